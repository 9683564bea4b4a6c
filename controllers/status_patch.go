package controllers

import (
	"encoding/json"
	"reflect"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// statusPatch is the merge patch from before's status to the object's, with the object's
// resourceVersion as a precondition (a reconcile working from a stale read must not overwrite
// newer progress). A request's first status write, from an empty status, is the whole status:
// computing that diff (both objects marshalled, unmarshalled and compared) cost the manager as
// much CPU as all of its API calls for a new request but one.
func statusPatch(before client.Object, beforeStatus, status any) client.Patch {
	if v := reflect.ValueOf(beforeStatus); v.IsValid() && v.IsZero() {
		return wholeStatusPatch{status: status}
	}
	return client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})
}

// wholeStatusPatch sets the status of an object whose status is empty.
type wholeStatusPatch struct {
	status any
}

func (wholeStatusPatch) Type() types.PatchType { return types.MergePatchType }

func (p wholeStatusPatch) Data(obj client.Object) ([]byte, error) {
	type metadata struct {
		ResourceVersion string `json:"resourceVersion"`
	}
	return json.Marshal(struct {
		Metadata metadata `json:"metadata"`
		Status   any      `json:"status"`
	}{metadata{obj.GetResourceVersion()}, p.status})
}
