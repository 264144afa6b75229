// Command seedweb stands in for nginx in the seed StatefulSet on the test
// node: it answers every HTTP request on --listen (default :80) with
// "<hostname>\n", so a client sees which pod answered. It exits on SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", ":80", "Address to serve HTTP on.")
	flag.Parse()
	host, err := os.Hostname()
	if err != nil {
		fmt.Fprintln(os.Stderr, "seedweb:", err)
		os.Exit(1)
	}
	srv := &http.Server{
		Addr:              *listen,
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintln(w, host)
		}),
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		// A fresh context: the signal's is already done.
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "seedweb:", err)
		os.Exit(1)
	}
}
