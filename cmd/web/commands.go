package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/skydm/skydm/internal/db"
	"github.com/skydm/skydm/internal/oauth"
)

// command is a subcommand: args are those after its name.
type command func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error

// subcommands are the commands besides serving, by name (`web <name> …`).
func subcommands() map[string]command {
	return map[string]command{
		"keygen": func(_ context.Context, _ []string, _ func(string) string, stdout, _ io.Writer) error {
			return keygen(stdout)
		},
		"backup": backupCmd,
		"check":  checkCmd,
	}
}

func subcommandNames() []string { return slices.Sorted(maps.Keys(subcommands())) }

const backupUsage = "usage: web backup [-db FILE] BACKUP-FILE (BACKUP-FILE must not exist yet)"

// backupCmd is `web backup [-db FILE] BACKUP-FILE`: a consistent copy of
// the database, safe while skydm runs and writes (db.Backup). The database
// is -db, else $SKYDM_DB, else skydm.db, as when serving.
func backupCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("web backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, backupUsage); fs.PrintDefaults() }
	src := getenv(fDB.env)
	if src == "" {
		src = defaultDB
	}
	fs.StringVar(&src, fDB.flag, src, "the database to back up ["+fDB.env+"]")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New(backupUsage)
	}
	dest := fs.Arg(0)
	if err := db.Backup(ctx, src, dest); err != nil {
		if _, serr := os.Stat(src); serr != nil {
			return fmt.Errorf("%w (the database is %s)", err, fDB)
		}
		return err
	}
	size := ""
	if fi, err := os.Stat(dest); err == nil {
		size = fmt.Sprintf(" (%d bytes)", fi.Size())
	}
	_, err := fmt.Fprintf(stdout, "backed up %s to %s%s\n", src, dest, size)
	return err
}

// checkCmd is `web check [flags]`, with the flags and environment of
// serving: it checks the configuration, the database and the chat service
// the way start does (and the chat service more strictly: a failed look-up
// is a problem here), prints one line per item, "ok" or "problem", and
// returns an error when there is a problem.
func checkCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	problems := 0
	say := func(item string, err error, ok string) {
		if err != nil {
			problems++
			fmt.Fprintf(stdout, "problem  %s: %v\n", item, err)
			return
		}
		fmt.Fprintf(stdout, "ok       %s: %s\n", item, ok)
	}
	result := func() error {
		if problems > 0 {
			return fmt.Errorf("check: %d problem(s)", problems)
		}
		return nil
	}

	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	if err != nil {
		var each lines
		if errors.As(err, &each) {
			for _, e := range each {
				say("configuration", e, "")
			}
		} else {
			say("configuration", err, "")
		}
		fmt.Fprintln(stdout, "(database and chat service not checked: fix the configuration first)")
		return result()
	}
	say("configuration", nil, "valid ("+clientKind(cfg)+" client)")

	applied, known, err := db.Check(ctx, cfg.DBPath)
	switch {
	case err == nil && db.DialectOfDSN(cfg.DBPath) == db.Postgres:
		say("database", nil, fmt.Sprintf("%s: answers, %d of %d migrations applied (the rest at start)", db.Redact(cfg.DBPath), applied, known))
	case err == nil:
		say("database", nil, fmt.Sprintf("%s: quick_check ok, %d of %d migrations applied (the rest at start)", cfg.DBPath, applied, known))
	case db.DialectOfDSN(cfg.DBPath) == db.Postgres:
		say("database", err, "")
	case !exists(cfg.DBPath) && isDir(filepath.Dir(cfg.DBPath)):
		say("database", nil, cfg.DBPath+" does not exist yet; skydm creates it at start")
	case !exists(cfg.DBPath):
		say("database", fmt.Errorf("%s: directory %s does not exist", fDB, filepath.Dir(cfg.DBPath)), "")
	default:
		say("database", err, "")
	}

	up, err := newUpstream(cfg)
	if err != nil {
		say("network", err, "")
		return result()
	}
	_, id, _ := parseServiceRef(up.chatService)
	endpoint, err := resolveChatService(ctx, up.dir, up.chatService)
	say("chat service "+up.chatService, err, "its DID document has #"+id+" at "+endpoint)
	return result()
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// keygen prints fresh secrets as environment lines. It fails only if the
// system random source does.
func keygen(stdout io.Writer) error {
	secret := make([]byte, 64)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	enc, err := oauth.GenerateEncryptionKey()
	if err != nil {
		return err
	}
	key, err := oauth.GenerateClientKey()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "SKYDM_SESSION_SECRET=%s\nSKYDM_ENCRYPTION_KEY=%s\nSKYDM_CLIENT_KEY=%s\n",
		base64.StdEncoding.EncodeToString(secret), enc, key)
	return err
}
