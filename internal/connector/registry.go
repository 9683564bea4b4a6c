package connector

import (
	"fmt"
	"sync"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

var (
	registryMu sync.RWMutex
	registry   = map[privacyv1alpha1.StoreType]Provider{}
)

// Register makes a provider available for a store type. It panics on a second registration of the
// same type: that is a programming error, caught at start-up.
func Register(storeType privacyv1alpha1.StoreType, p Provider) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[storeType]; dup {
		panic(fmt.Sprintf("connector: provider for store type %q registered twice", storeType))
	}
	registry[storeType] = p
}

// ProviderFor returns the provider of a store type.
func ProviderFor(storeType privacyv1alpha1.StoreType) (Provider, error) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	p, ok := registry[storeType]
	if !ok {
		return nil, Errorf(KindInvalid, "connect", "no connector for store type %q", storeType)
	}
	return p, nil
}
