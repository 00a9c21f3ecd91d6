// avahi-client: the agent talks to the system's avahi-daemon over D-Bus.
// Variadic calls do not import into Swift; use the *_strlst variants.
#include <avahi-client/client.h>
#include <avahi-client/publish.h>
#include <avahi-client/lookup.h>
#include <avahi-common/error.h>
#include <avahi-common/simple-watch.h>
#include <avahi-common/thread-watch.h>
#include <avahi-common/strlst.h>
#include <avahi-common/malloc.h>
#include <avahi-common/address.h>
