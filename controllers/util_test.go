package controllers_test

import (
	"encoding/json"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func keyOf(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }
