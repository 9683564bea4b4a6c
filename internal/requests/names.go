package requests

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Labels on the objects the operator creates for a request (receipt ConfigMaps, export Secrets).
const (
	// LabelManagedBy marks every object the operator manages.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is LabelManagedBy's value.
	ManagedByValue = "dsr-operator"
	// LabelRequestUID ties an object to its request. A UID, unlike a name (up to 253 characters),
	// always fits a label value, and a later request of the same name has another one.
	LabelRequestUID = "privacy.dsr.dev/request-uid"
)

// DerivedName is the name of an object that belongs to the request named requestName: the name
// followed by suffix (e.g. "-receipt"), which is what users see for every usual name. When that
// would be longer than an object name may be (253), the request's name is cut and a hash of the
// whole name added, so that two long names sharing a prefix still get two objects.
func DerivedName(requestName, suffix string) string {
	name := requestName + suffix
	if len(name) <= validation.DNS1123SubdomainMaxLength {
		return name
	}
	sum := sha256.Sum256([]byte(requestName))
	hash := "-" + hex.EncodeToString(sum[:])[:10]
	keep := validation.DNS1123SubdomainMaxLength - len(hash) - len(suffix)
	// A DNS subdomain's labels end with an alphanumeric character.
	base := strings.TrimRight(requestName[:keep], "-.")
	return base + hash + suffix
}

// RequestLabels labels an object created for a request. nameKey (e.g.
// "privacy.dsr.dev/deletionrequest") carries the request's name when it fits a label value and is
// empty otherwise, so that selecting on the key alone finds every such object.
func RequestLabels(nameKey, requestName, requestUID string) map[string]string {
	nameValue := requestName
	if len(validation.IsValidLabelValue(requestName)) > 0 {
		nameValue = ""
	}
	return map[string]string{
		LabelManagedBy:  ManagedByValue,
		LabelRequestUID: requestUID,
		nameKey:         nameValue,
	}
}
