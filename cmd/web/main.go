// Command web is the skydm web app: Bluesky DMs in server-rendered pages.
//
//	web [flags]        serve (every flag also reads an SKYDM_* environment variable)
//	web keygen         print fresh secrets and a client key as SKYDM_* lines
//	web check [flags]  check the configuration, the database and the chat
//	                   service's DID document; exit 1 on a problem
//	web backup [-db FILE] BACKUP-FILE
//	                   a consistent copy of the database, safe while skydm runs
//
// Production runs as a confidential OAuth client (-public-url https://…,
// -client-key); the sandbox (-sandbox -sandbox-state FILE) may run as the
// loopback client on http://127.0.0.1:PORT. `web -h` lists the flags.
//
// The program is run (run.go): parseConfig reads the flags and variables
// (config.go; the timings and their one defaults are tunables.go) and
// validates them (validate.go), newApp builds the app from that config
// (app.go), and serve runs it until the signal to stop.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "web:", err)
		os.Exit(1)
	}
}
