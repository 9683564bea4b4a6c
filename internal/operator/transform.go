package operator

import (
	"slices"
	"unique"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// The cache holds every request of the cluster for as long as it exists (a deletion request for
// its whole re-verification period), so what each one costs in memory is what the manager costs
// at 10,000 requests. The transforms below change no value the controllers read.

// compactRequest strips managed fields, trims the status lists the JSON decoder grew by doubling
// to their length, and shares the strings that most requests hold alike (condition types,
// reasons and messages, store names, kinds and phases).
func compactRequest(in any) (any, error) {
	in, err := stripManagedFields(in)
	if err != nil {
		return in, err
	}
	switch o := in.(type) {
	case *privacyv1alpha1.DeletionRequest:
		o.Status.Conditions = compactConditions(o.Status.Conditions)
		o.Status.Stores = slices.Clone(o.Status.Stores)
		for i := range o.Status.Stores {
			s := &o.Status.Stores[i]
			internStore(&s.Name, &s.Kind, &s.Type, &s.Phase, &s.Message)
		}
		if rc := o.Status.Receipt; rc != nil {
			rc.KeyID = shared.intern(rc.KeyID)
		}
	case *privacyv1alpha1.AccessRequest:
		o.Status.Conditions = compactConditions(o.Status.Conditions)
		o.Status.Stores = slices.Clone(o.Status.Stores)
		for i := range o.Status.Stores {
			s := &o.Status.Stores[i]
			internStore(&s.Name, &s.Kind, &s.Type, &s.Phase, &s.Message)
		}
	}
	return in, nil
}

func internStore(name *string, kind *privacyv1alpha1.StoreKind, typ *privacyv1alpha1.StoreType, phase *privacyv1alpha1.StorePhase, message *string) {
	*name, *message = shared.intern(*name), shared.intern(*message)
	*kind = privacyv1alpha1.StoreKind(shared.intern(string(*kind)))
	*typ = privacyv1alpha1.StoreType(shared.intern(string(*typ)))
	*phase = privacyv1alpha1.StorePhase(shared.intern(string(*phase)))
}

var stripManagedFields = cache.TransformStripManagedFields()

func compactConditions(conds []metav1.Condition) []metav1.Condition {
	if conds == nil {
		return nil
	}
	conds = slices.Clone(conds)
	for i := range conds {
		c := &conds[i]
		c.Type, c.Reason, c.Message = shared.intern(c.Type), shared.intern(c.Reason), shared.intern(c.Message)
		c.Status = metav1.ConditionStatus(shared.intern(string(c.Status)))
	}
	return conds
}

// maxInternedLen leaves long strings (error messages) alone: they are rarely alike.
const maxInternedLen = 256

// interner shares equal strings through Go's unique package. Its handles are weak: a string that
// no request holds any more (a deadline in a message) is reclaimed, so no bound is needed.
type interner struct{}

var shared interner

func (interner) intern(s string) string {
	if s == "" || len(s) > maxInternedLen {
		return s
	}
	return unique.Make(s).Value()
}
