// Command refservice runs the reference implementation of the dsr-operator HTTP connector
// protocol v1 over a JSON seed of records. See test/refservice/README.md.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/dsr-operator/dsr-operator/test/refservice"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "refservice:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	seedFile := flag.String("seed", "", "JSON file of locations and records (see README.md)")
	tokenFile := flag.String("token-file", "", "file holding the bearer token (default: $REFSERVICE_TOKEN)")
	noAuth := flag.Bool("insecure-no-auth", false, "accept requests without a bearer token")
	certFile := flag.String("tls-cert", "", "PEM certificate chain; with -tls-key, serve HTTPS")
	keyFile := flag.String("tls-key", "", "PEM private key of -tls-cert")
	asyncOps := flag.String("async", "", "comma-separated operations that answer 202 first: collect,erase,verify")
	asyncPolls := flag.Int("async-polls", 1, "how many POSTs of an async job answer 202 before it completes")
	asyncDelay := flag.Duration("async-delay", 0, "also complete an async job once this long has passed")
	retryAfter := flag.Duration("retry-after", time.Second, "retryAfterSeconds of a 202 answer")
	flag.Parse()

	token := os.Getenv("REFSERVICE_TOKEN")
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return err
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" && !*noAuth {
		return errors.New("no bearer token: set -token-file or $REFSERVICE_TOKEN, or pass -insecure-no-auth")
	}
	var ops []string
	for op := range strings.SplitSeq(*asyncOps, ",") {
		switch op = strings.TrimSpace(op); op {
		case "":
		case refservice.OpCollect, refservice.OpErase, refservice.OpVerify:
			ops = append(ops, op)
		default:
			return fmt.Errorf("-async: unknown operation %q", op)
		}
	}
	svc := refservice.New(refservice.Options{
		Token: token,
		Async: refservice.Async{Ops: ops, Polls: *asyncPolls, Delay: *asyncDelay, RetryAfter: *retryAfter},
	})
	if *seedFile != "" {
		f, err := os.Open(*seedFile)
		if err != nil {
			return err
		}
		err = svc.Load(f)
		_ = f.Close()
		if err != nil {
			return err
		}
	}
	if (*certFile == "") != (*keyFile == "") {
		return errors.New("-tls-cert and -tls-key go together")
	}

	srv := &http.Server{
		Addr:              *listen,
		Handler:           logRequests(svc),
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12},
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	scheme := "http"
	if *certFile != "" {
		scheme = "https"
	}
	log.Printf("serving protocol %s on %s://%s", refservice.ProtocolVersion, scheme, *listen)
	var err error
	if *certFile != "" {
		err = srv.ListenAndServeTLS(*certFile, *keyFile)
	} else {
		err = srv.ListenAndServe()
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// logRequests logs method, path, status and duration: never a header or a body, which hold the
// token and the subjects' identifiers.
func logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		log.Printf("%s %s %d %s", r.Method, r.URL.Path, rec.status, time.Since(start).Round(time.Millisecond))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}
