package validation

import (
	"fmt"
	"strconv"
	"strings"
)

// A path names a field of an object as the API server's messages do: spec.tables[0].name.
type pathStep struct {
	key   string
	index int // -1 when the step is not into a list
}

func parsePath(path string) []pathStep {
	var steps []pathStep
	for _, part := range strings.Split(path, ".") {
		step := pathStep{key: part, index: -1}
		if open := strings.IndexByte(part, '['); open >= 0 && strings.HasSuffix(part, "]") {
			i, err := strconv.Atoi(part[open+1 : len(part)-1])
			if err != nil {
				panic(fmt.Sprintf("bad path %q", path))
			}
			step = pathStep{key: part[:open], index: i}
		}
		steps = append(steps, step)
	}
	return steps
}

// walk returns the map that holds the last step of path, creating maps on the way when create is
// set. It panics on a path that does not fit the object: a broken test case, not a test failure.
func walk(obj map[string]any, path string, create bool) (map[string]any, pathStep, bool) {
	steps := parsePath(path)
	current := obj
	for n, step := range steps {
		last := n == len(steps)-1
		if last && step.index < 0 {
			return current, step, true
		}
		next, ok := current[step.key]
		if !ok {
			if !create || step.index >= 0 {
				return nil, step, false
			}
			next = map[string]any{}
			current[step.key] = next
		}
		if step.index >= 0 {
			list, ok := next.([]any)
			if !ok || step.index >= len(list) {
				panic(fmt.Sprintf("path %q: %s has no element %d", path, step.key, step.index))
			}
			if last {
				panic(fmt.Sprintf("path %q: setting list elements is not supported", path))
			}
			next = list[step.index]
		}
		m, ok := next.(map[string]any)
		if !ok {
			panic(fmt.Sprintf("path %q: %s is not an object", path, step.key))
		}
		current = m
	}
	return current, pathStep{}, false
}

// set returns a mutation that sets the field at path, creating the objects above it.
func set(path string, value any) func(map[string]any) {
	return func(obj map[string]any) {
		parent, step, _ := walk(obj, path, true)
		parent[step.key] = value
	}
}

// del returns a mutation that removes the field at path; the field must be there, so that a case
// never passes because its base lacked the field to begin with.
func del(path string) func(map[string]any) {
	return func(obj map[string]any) {
		parent, step, ok := walk(obj, path, false)
		if !ok {
			panic(fmt.Sprintf("path %q: nothing to delete", path))
		}
		if _, present := parent[step.key]; !present {
			panic(fmt.Sprintf("path %q: nothing to delete", path))
		}
		delete(parent, step.key)
	}
}

func lookup(obj map[string]any, path string) (any, bool) {
	parent, step, ok := walk(obj, path, false)
	if !ok {
		return nil, false
	}
	value, ok := parent[step.key]
	return value, ok
}
