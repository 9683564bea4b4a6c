package postgres

import (
	"testing"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore/sqltest"
)

func TestUnmapped(t *testing.T) {
	sqltest.RunUnmapped(t, harness(t))
}
