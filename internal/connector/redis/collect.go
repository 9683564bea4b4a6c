package redis

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"unicode/utf8"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// Collect reads every key of the subject, retained ones included, whatever its type. Each record
// is {Location: pattern, Key: key, Data: {"type": ..., "value": ...}}; see read for the shapes.
func (c *client) Collect(ctx context.Context, req connector.Request) (*connector.Collection, error) {
	return connector.CollectAll(ctx, c, req)
}

// CollectTo hands each key's record to emit as soon as its value is read
// (connector.CollectStreamer): only the subject's key names are held meanwhile, not their values.
func (c *client) CollectTo(ctx context.Context, req connector.Request, emit func(connector.Record) error) (bool, error) {
	found, _, err := c.find(ctx, "collect", req)
	if err != nil {
		return false, err
	}
	for _, l := range found {
		for _, k := range l.keys {
			data, err := c.read(ctx, k)
			if err != nil {
				return false, fail(ctx, "collect", err, req.Identifiers)
			}
			if data == nil {
				continue // gone since it was found
			}
			if err := emit(connector.Record{Location: l.m.pattern.source, Key: k, Data: data}); err != nil {
				return false, err // the caller's own error
			}
		}
	}
	return false, nil
}

// read returns a key's value by its type, nil if the key is gone:
//
//	string  "value": "text"
//	hash    "value": {"field": "value"}
//	list    "value": ["a", "b"] (in order)
//	set     "value": ["a", "b"] (sorted)
//	zset    "value": [{"member": "m", "score": 1}] (by score)
//	stream  "value": [{"id": "1-0", "values": {"field": "value"}}]
//
// Redis strings are bytes; a value that is not all UTF-8 would be mangled by JSON, so then every
// string of the value (hash fields included) is base64 and "encoding" is "base64". Other types
// (module types) are named, not exported.
func (c *client) read(ctx context.Context, key string) (map[string]any, error) {
	typ, err := c.rdb.Type(ctx, key).Result()
	if err != nil || typ == "none" {
		return nil, err
	}
	var strs []string // every string of the value, to choose the encoding
	var build func(enc func(string) string) any
	switch typ {
	case "string":
		var s string
		s, err = c.rdb.Get(ctx, key).Result()
		strs = []string{s}
		build = func(enc func(string) string) any { return enc(s) }
	case "hash":
		var h map[string]string
		h, err = c.rdb.HGetAll(ctx, key).Result()
		for f, v := range h {
			strs = append(strs, f, v)
		}
		build = func(enc func(string) string) any {
			out := make(map[string]string, len(h))
			for f, v := range h {
				out[enc(f)] = enc(v)
			}
			return out
		}
	case "list", "set":
		var items []string
		if typ == "list" {
			items, err = c.rdb.LRange(ctx, key, 0, -1).Result()
		} else {
			items, err = c.rdb.SMembers(ctx, key).Result()
			sort.Strings(items)
		}
		strs = items
		build = func(enc func(string) string) any {
			out := make([]string, len(items))
			for i, s := range items {
				out[i] = enc(s)
			}
			return out
		}
	case "zset":
		var zs []goredis.Z
		zs, err = c.rdb.ZRangeWithScores(ctx, key, 0, -1).Result()
		for _, z := range zs {
			strs = append(strs, member(z.Member))
		}
		build = func(enc func(string) string) any {
			out := make([]map[string]any, len(zs))
			for i, z := range zs {
				out[i] = map[string]any{"member": enc(member(z.Member)), "score": z.Score}
			}
			return out
		}
	case "stream":
		var msgs []goredis.XMessage
		msgs, err = c.rdb.XRange(ctx, key, "-", "+").Result()
		for _, m := range msgs {
			for f, v := range m.Values {
				strs = append(strs, f, member(v))
			}
		}
		build = func(enc func(string) string) any {
			out := make([]map[string]any, len(msgs))
			for i, m := range msgs {
				values := make(map[string]string, len(m.Values))
				for f, v := range m.Values {
					values[enc(f)] = enc(member(v))
				}
				out[i] = map[string]any{"id": m.ID, "values": values}
			}
			return out
		}
	default:
		return map[string]any{"type": typ, "value": nil, "note": "a value of this type is not exported"}, nil
	}
	if errors.Is(err, goredis.Nil) {
		return nil, nil // deleted between TYPE and the read
	}
	if err != nil {
		return nil, err
	}
	data := map[string]any{"type": typ}
	enc := func(s string) string { return s }
	for _, s := range strs {
		if !utf8.ValidString(s) {
			enc = func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
			data["encoding"] = "base64"
			break
		}
	}
	data["value"] = build(enc)
	return data, nil
}

// member is a zset member or stream value, which go-redis returns as any but is a string.
func member(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}
