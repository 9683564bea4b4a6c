package teststore

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a throwaway Redis server on a free loopback port without persistence: Stop and
// Start keep the port but, unlike the SQL servers, not the data. Password is always set.
type Redis struct {
	Host     string
	Port     int
	Password string

	lifecycle
}

// StartRedis starts a password-protected, non-persistent redis-server.
func StartRedis(ctx context.Context) (_ *Redis, err error) {
	server, err := findBinary("redis-server", "redis-server")
	if err != nil {
		return nil, err
	}
	base, err := makeBaseDir("redis")
	if err != nil {
		return nil, err
	}
	r := &Redis{Host: "127.0.0.1", Password: randomHex(16)}
	r.baseDir, r.relaunch = base, r.launch
	defer func() {
		if err != nil {
			_ = r.Close()
		}
	}()
	r.proc = &process{name: "redis-server", bin: server, dir: base, logPath: filepath.Join(base, "redis.log")}
	port, err := startWithPortRetry(ctx, func(ctx context.Context, port int) (*process, error) {
		r.Port = port
		return r.proc, r.launch(ctx)
	})
	if err != nil {
		return nil, err
	}
	r.Port = port
	return r, nil
}

func (r *Redis) launch(ctx context.Context) error {
	r.proc.args = []string{
		"--port", strconv.Itoa(r.Port),
		"--bind", "127.0.0.1",
		"--dir", r.baseDir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--unixsocket", "",
		"--requirepass", r.Password,
		"--loglevel", "warning",
	}
	return r.proc.startAndWait(ctx, func(ctx context.Context) error {
		// go-redis bounds reads by its own timeouts, not by ctx cancellation, so a probe that
		// reached a foreign listener on a stolen port would otherwise hang for the defaults.
		client := redis.NewClient(&redis.Options{
			Addr:         fmt.Sprintf("%s:%d", r.Host, r.Port),
			Password:     r.Password,
			MaxRetries:   -1,
			DialTimeout:  time.Second,
			ReadTimeout:  time.Second,
			WriteTimeout: time.Second,
		})
		defer client.Close()
		return client.Ping(ctx).Err()
	})
}

// URL returns a go-redis URL for logical database db.
func (r *Redis) URL(db int) string {
	u := url.URL{Scheme: "redis", Host: fmt.Sprintf("%s:%d", r.Host, r.Port), Path: "/" + strconv.Itoa(db)}
	if r.Password != "" {
		u.User = url.UserPassword("", r.Password)
	}
	return u.String()
}
