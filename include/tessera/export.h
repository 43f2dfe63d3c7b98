// Symbol visibility: the library is built with hidden visibility and exports
// only what carries TESSERA_API.
#pragma once

#if defined(TESSERA_BUILDING_LIBRARY)
#define TESSERA_API __attribute__((visibility("default")))
#else
#define TESSERA_API
#endif
