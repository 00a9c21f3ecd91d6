// HubSyncDiscovery: finding peers on the local network with mDNS/DNS-SD through Avahi
// (CHubAvahi, behind internal imports): publishing this device's advert and browsing for others.
//
// It sits beside Store: it imports only HubSyncBase, HubSyncCrypto and CHubAvahi — not Core,
// Store, Net, GRDB or NIO. Avahi's threaded poll runs on its own thread, never on an event loop.
