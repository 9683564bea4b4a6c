package mongodb

import (
	"context"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// txnSupport caches whether the deployment runs multi-document transactions. It is asked once
// per client and again after a failed erasure (a deployment can be converted to a replica set).
type txnSupport struct {
	mu    sync.Mutex
	known bool
	yes   bool
}

func (t *txnSupport) forget() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.known = false
}

// transactional reports whether the deployment runs multi-document transactions: a replica set
// member or a mongos (hello's setName, or msg "isdbgrid"), with sessions, that is MongoDB itself.
// FerretDB answers hello with a setName when started with --repl-set-name but ignores
// startTransaction and applies every write at once, so a server whose buildInfo names a
// ferretdbVersion never counts: there, the per-document order is all there is.
func (s *Store) transactional(ctx context.Context) (bool, error) {
	s.txn.mu.Lock()
	defer s.txn.mu.Unlock()
	if s.txn.known {
		return s.txn.yes, nil
	}
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	var hello struct {
		SetName  string `bson:"setName"`
		Msg      string `bson:"msg"`
		Sessions *int64 `bson:"logicalSessionTimeoutMinutes"`
	}
	if err := s.client.Database("admin").RunCommand(octx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return false, err
	}
	yes := (hello.SetName != "" || hello.Msg == "isdbgrid") && hello.Sessions != nil
	if yes {
		var info bson.M
		if err := s.client.Database("admin").RunCommand(octx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
			return false, err
		}
		if _, ferret := info["ferretdbVersion"]; ferret {
			yes = false
		}
	}
	s.txn.known, s.txn.yes = true, yes
	return yes, nil
}

// applyInTransaction makes every change of an erasure in one transaction: an outage or crash
// leaves the store as it was. The callback may run again on a transient error, so it counts
// afresh every time.
func (s *Store) applyInTransaction(ctx context.Context, plans []*plan, owned connector.Values, res *connector.EraseResult) error {
	sess, err := s.client.StartSession()
	if err != nil {
		return err
	}
	defer sess.EndSession(context.Background())
	_, err = sess.WithTransaction(ctx, func(ctx context.Context) (any, error) {
		res.Erased, res.Masked = 0, 0
		return nil, s.applyInOrder(ctx, plans, owned, res)
	})
	return err
}

// applyInOrder makes the changes one document (or delete batch) at a time, in eraseOrder.
func (s *Store) applyInOrder(ctx context.Context, plans []*plan, owned connector.Values, res *connector.EraseResult) error {
	for _, p := range s.eraseOrder(plans) {
		switch p.m.action() {
		case privacyv1alpha1.ActionDelete:
			n, err := s.deleteDocs(ctx, p, owned)
			res.Erased += n
			if err != nil {
				return locate(err, p.m)
			}
		case privacyv1alpha1.ActionMask:
			n, err := s.maskDocs(ctx, p)
			res.Masked += n
			if err != nil {
				return locate(err, p.m)
			}
		}
	}
	return nil
}
