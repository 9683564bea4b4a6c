// Package all registers every connector; import it for its side effect.
package all

import (
	_ "github.com/dsr-operator/dsr-operator/internal/connector/httpstore"
	_ "github.com/dsr-operator/dsr-operator/internal/connector/mongodb"
	_ "github.com/dsr-operator/dsr-operator/internal/connector/mysql"
	_ "github.com/dsr-operator/dsr-operator/internal/connector/postgres"
	_ "github.com/dsr-operator/dsr-operator/internal/connector/redis"
	_ "github.com/dsr-operator/dsr-operator/internal/connector/s3"
	_ "github.com/dsr-operator/dsr-operator/internal/connector/sqlite"
)
