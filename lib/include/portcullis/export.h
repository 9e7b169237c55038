// portcullis/export.h — the one export macro. Everything not marked is hidden.
#pragma once

#if defined(PORTCULLIS_BUILDING_LIBRARY)
#define PORTCULLIS_EXPORT __attribute__((visibility("default")))
#else
#define PORTCULLIS_EXPORT
#endif
