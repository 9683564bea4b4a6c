// Command benchmedian reads the summary lines of several make bench rounds ("bench: key=value
// ...") on stdin and prints one line with, for every numeric key, the median over the rounds and
// the spread: "key=median (min-max)". Text values (the mode) must agree between rounds.
//
// make bench BENCH_ROUNDS=3 runs it; docs/benchmarks.md reports its lines.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

func main() {
	line, err := summarize(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchmedian:", err)
		os.Exit(1)
	}
	fmt.Println(line)
}

func summarize(in io.Reader) (string, error) {
	var keys []string
	numbers := map[string][]float64{}
	texts := map[string]string{}
	rounds := 0
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "bench:" {
			continue
		}
		rounds++
		for _, f := range fields[1:] {
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				continue
			}
			if _, seen := numbers[k]; !seen && texts[k] == "" {
				keys = append(keys, k)
			}
			if x, err := strconv.ParseFloat(v, 64); err == nil {
				numbers[k] = append(numbers[k], x)
				continue
			}
			if texts[k] != "" && texts[k] != v {
				return "", fmt.Errorf("%s differs between rounds: %s and %s", k, texts[k], v)
			}
			texts[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	if rounds == 0 {
		return "", fmt.Errorf("no summary lines")
	}
	out := []string{"bench-median:", fmt.Sprintf("rounds=%d", rounds)}
	for _, k := range keys {
		if t, ok := texts[k]; ok {
			out = append(out, k+"="+t)
			continue
		}
		xs := numbers[k]
		sort.Float64s(xs)
		if xs[0] == xs[len(xs)-1] {
			out = append(out, fmt.Sprintf("%s=%s", k, format(xs[0])))
			continue
		}
		out = append(out, fmt.Sprintf("%s=%s(%s-%s)", k, format(median(xs)), format(xs[0]), format(xs[len(xs)-1])))
	}
	return strings.Join(out, " "), nil
}

// median of sorted values; the mean of the middle two for an even count.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

func format(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
