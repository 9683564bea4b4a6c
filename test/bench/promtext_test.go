package bench

import (
	"bufio"
	"sort"
	"strconv"
	"strings"
)

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// parseProm reads the samples of the Prometheus text format, skipping comments and lines it cannot
// read. It is enough for the API server's and the manager's /metrics; label values with escaped
// quotes are not expected there.
func parseProm(body string) []sample {
	var out []sample
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s := sample{labels: map[string]string{}}
		var rest string
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			s.name = line[:i]
			for _, kv := range splitLabels(line[i+1 : j]) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					continue
				}
				s.labels[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
			}
			rest = strings.TrimSpace(line[j+1:])
		} else {
			name, r, ok := strings.Cut(line, " ")
			if !ok {
				continue
			}
			s.name, rest = name, strings.TrimSpace(r)
		}
		// A timestamp may follow the value.
		if f := strings.Fields(rest); len(f) > 0 {
			v, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				continue
			}
			s.value = v
			out = append(out, s)
		}
	}
	return out
}

// splitLabels splits `a="x",b="y,z"` at the commas outside quotes.
func splitLabels(s string) []string {
	var parts []string
	inQuote, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	if start < len(s) {
		parts = append(parts, s[start:])
	}
	return parts
}

// mutatingVerbs are the verbs of apiserver_request_total that write.
var mutatingVerbs = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "DELETE": true, "DELETECOLLECTION": true, "APPLY": true}

// apiCounts is apiserver_request_total summed by "VERB resource[/subresource]".
type apiCounts map[string]float64

func requestCounts(samples []sample) apiCounts {
	out := apiCounts{}
	for _, s := range samples {
		if s.name != "apiserver_request_total" {
			continue
		}
		res := s.labels["resource"]
		if res == "" {
			continue // non-resource paths (/metrics, /healthz...)
		}
		if sub := s.labels["subresource"]; sub != "" {
			res += "/" + sub
		}
		out[s.labels["verb"]+" "+res] += s.value
	}
	return out
}

// minus is c - before, keeping the keys that changed.
func (c apiCounts) minus(before apiCounts) apiCounts {
	out := apiCounts{}
	for k, v := range c {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func (c apiCounts) writes() float64 {
	var sum float64
	for k, v := range c {
		if mutatingVerbs[strings.Fields(k)[0]] {
			sum += v
		}
	}
	return sum
}

// sortedKeys orders the keys by count, largest first.
func (c apiCounts) sortedKeys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if c[keys[i]] != c[keys[j]] {
			return c[keys[i]] > c[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}

// sumOf adds the values of the samples called name whose labels include match.
func sumOf(samples []sample, name string, match map[string]string) float64 {
	var sum float64
	for _, s := range samples {
		if s.name != name {
			continue
		}
		ok := true
		for k, v := range match {
			if s.labels[k] != v {
				ok = false
				break
			}
		}
		if ok {
			sum += s.value
		}
	}
	return sum
}
