// Package requests holds what deletion and access requests share: accepting a request (its subject
// and its stores), classifying store failures and timing retries.
package requests

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/regulation"
	"github.com/dsr-operator/dsr-operator/internal/stores"
	"github.com/dsr-operator/dsr-operator/internal/subject"
)

// Acceptance is an accepted request's subject and stores.
type Acceptance struct {
	Stores        []stores.Store
	Identifiers   connector.Identifiers
	SubjectDigest string
	ReceivedAt    time.Time
	Deadline      time.Time
}

// Rejection says why a request cannot be accepted yet; Reason is a condition reason. The request
// stays pending: the author may still create the Secret or the store.
type Rejection struct {
	Reason  string
	Message string
}

func (r *Rejection) Error() string { return r.Message }

// Clock times a request: from spec.receivedAt when the portal set it, else from creation.
func Clock(obj metav1.Object, common *privacyv1alpha1.RequestSpecCommon) (receivedAt, deadline time.Time, err error) {
	receivedAt = obj.GetCreationTimestamp().Time
	// The portal may say the person asked earlier, never later: a future receivedAt would
	// postpone the deadline and hide a late answer.
	if common.ReceivedAt != nil && !common.ReceivedAt.IsZero() && common.ReceivedAt.Time.Before(receivedAt) {
		receivedAt = common.ReceivedAt.Time
	}
	receivedAt = receivedAt.UTC().Truncate(time.Second)
	deadline, err = regulation.Deadline(common.Regulation, receivedAt)
	return receivedAt, deadline, err
}

// RegulationRejection refuses a request whose regulation has no deadline rule: a request without a
// deadline cannot be tracked against it, so it is not worked on at all.
func RegulationRejection(err error) *Rejection {
	return &Rejection{Reason: privacyv1alpha1.ReasonRegulationUnknown,
		Message: err.Error() + "; use one of the regulations the operator knows a deadline for"}
}

// Accept resolves a request's stores and subject. A *Rejection is returned for what the request's
// author must fix; other errors are transient.
func Accept(ctx context.Context, cache client.Reader, apiReader client.Reader, salt []byte, obj metav1.Object, common *privacyv1alpha1.RequestSpecCommon) (*Acceptance, error) {
	receivedAt, deadline, err := Clock(obj, common)
	if err != nil {
		return nil, RegulationRejection(err)
	}
	found, err := stores.Resolve(ctx, cache, obj.GetNamespace(), common.StoreSelector)
	if err != nil {
		var se *stores.SelectorError
		if errors.As(err, &se) {
			return nil, &Rejection{Reason: privacyv1alpha1.ReasonNoStores, Message: se.Error()}
		}
		return nil, err
	}
	if len(found) == 0 {
		msg := fmt.Sprintf("no DataStore in namespace %q and no ClusterDataStore admitting it", obj.GetNamespace())
		if common.StoreSelector != nil {
			msg += " matches storeSelector"
		}
		return nil, &Rejection{Reason: privacyv1alpha1.ReasonNoStores, Message: msg}
	}
	ids, err := subject.Read(ctx, apiReader, obj.GetNamespace(), common.Subject.IdentifiersSecretRef.Name)
	if err != nil {
		var p *subject.Problem
		if errors.As(err, &p) {
			return nil, &Rejection{Reason: p.Reason, Message: p.Message}
		}
		return nil, err
	}
	if unknown := UnknownIdentifiers(found, ids); len(unknown) > 0 {
		return nil, &Rejection{Reason: privacyv1alpha1.ReasonUnknownIdentifier, Message: fmt.Sprintf(
			"identifier %s in Secret %q is used by none of the request's %d stores (they use: %s)",
			quoteAll(unknown), common.Subject.IdentifiersSecretRef.Name, len(found), quoteAll(usedNames(found)))}
	}
	return &Acceptance{
		Stores: found, Identifiers: ids, SubjectDigest: subject.Digest(salt, ids),
		ReceivedAt: receivedAt, Deadline: deadline,
	}, nil
}

// UnknownIdentifiers returns the identifier names that no store uses. A typo in a name would
// otherwise erase nothing and still verify clean. Any http store may use any name, so none is
// unknown then.
func UnknownIdentifiers(found []stores.Store, ids connector.Identifiers) []string {
	used := map[string]bool{}
	for _, s := range found {
		names, ok := stores.IdentifierNames(s.Spec)
		if !ok {
			return nil
		}
		for _, n := range names {
			used[n] = true
		}
	}
	var unknown []string
	for _, n := range ids.Names() {
		if !used[n] {
			unknown = append(unknown, n)
		}
	}
	return unknown
}

func usedNames(found []stores.Store) []string {
	var all []string
	for _, s := range found {
		names, _ := stores.IdentifierNames(s.Spec)
		all = append(all, names...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}
