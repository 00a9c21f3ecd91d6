// libsodium, imported whole: HubSyncCrypto wraps it in Swift types with zeroed keys.
#include <sodium.h>
