package mongodb

import (
	"context"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// Transactional exposes the store's decision whether erasures run in a transaction.
func Transactional(ctx context.Context, c connector.Client) (bool, error) {
	return c.(*Store).transactional(ctx)
}
