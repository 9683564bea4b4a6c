package mysql

import (
	"context"
	"database/sql/driver"
	"errors"

	"github.com/go-sql-driver/mysql"
	"k8s.io/utils/lru"
)

// preparedPerConn is how many prepared statements each connection keeps. A store's statements
// repeat (the same tables, columns and number of values for every request), so a few dozen cover
// them; the server's max_prepared_stmt_count (16,382 by default) bounds them over every
// connection of every client of the server.
const preparedPerConn = 64

// erNeedReprepare is the server asking for a statement to be prepared again (its tables changed).
const erNeedReprepare = 1615

// reusingPrepared opens connections that keep their prepared statements. With server-side binding
// (interpolateParams=false) go-sql-driver/mysql prepares, executes and closes a statement for
// every query with values: two round trips and a parse each time. A connection here prepares each
// query once and executes it again with new values: one round trip.
type reusingPrepared struct {
	driver.Connector
}

func (c reusingPrepared) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	inner, ok := conn.(mysqlConn)
	if !ok {
		return conn, nil
	}
	return &stmtCachingConn{mysqlConn: inner, stmts: lru.NewWithEvictionFunc(preparedPerConn, closeEvicted)}, nil
}

// mysqlConn is what database/sql uses of a go-sql-driver/mysql connection; stmtCachingConn
// forwards all of it.
type mysqlConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
	driver.NamedValueChecker
}

// stmtCachingConn is one connection and its prepared statements. database/sql uses a connection
// from one goroutine at a time, so the cache needs no more than its own lock. Closing the
// connection drops its statements on the server.
type stmtCachingConn struct {
	mysqlConn
	stmts *lru.Cache
}

func closeEvicted(_ lru.Key, value any) { _ = value.(driver.Stmt).Close() }

func (c *stmtCachingConn) prepared(ctx context.Context, query string) (driver.Stmt, error) {
	if st, ok := c.stmts.Get(query); ok {
		return st.(driver.Stmt), nil
	}
	st, err := c.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.stmts.Add(query, st)
	return st, nil
}

// forget drops a statement the server no longer accepts, so that the next use prepares it again.
func (c *stmtCachingConn) forget(query string, err error) {
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == erNeedReprepare {
		c.stmts.Remove(query)
	}
}

func (c *stmtCachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return withPrepared(ctx, c, query, args,
		func() (driver.Result, error) { return c.mysqlConn.ExecContext(ctx, query, args) },
		func(st driver.Stmt) (driver.Result, error) { return st.(driver.StmtExecContext).ExecContext(ctx, args) })
}

func (c *stmtCachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return withPrepared(ctx, c, query, args,
		func() (driver.Rows, error) { return c.mysqlConn.QueryContext(ctx, query, args) },
		func(st driver.Stmt) (driver.Rows, error) { return st.(driver.StmtQueryContext).QueryContext(ctx, args) })
}

// withPrepared runs a query with values on the connection's prepared statement for it, and one
// without values as it is (the text protocol, nothing to prepare).
func withPrepared[T any](ctx context.Context, c *stmtCachingConn, query string, args []driver.NamedValue,
	plain func() (T, error), prepared func(driver.Stmt) (T, error)) (T, error) {
	if len(args) == 0 {
		return plain()
	}
	st, err := c.prepared(ctx, query)
	if err != nil {
		var none T
		return none, err
	}
	out, err := prepared(st)
	if err != nil {
		c.forget(query, err)
	}
	return out, err
}
