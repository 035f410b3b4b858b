// Command cborgen writes internal/lex/chat/cbor_gen.go: the CBOR encoders of
// the chat.bsky record types lexgen generates, as indigo's gen does for its
// api/chat. `make generate` runs it with -tags cborgen, under which
// internal/lex/chat compiles against stub encoders (cbor_stub.go), so the
// package can be built before its encoders exist.
package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/skydm/skydm/internal/lex/chat"
	cbg "github.com/whyrusleeping/cbor-gen"
)

func main() {
	const out = "internal/lex/chat/cbor_gen.go"
	gen := cbg.Gen{MaxStringLength: 1_000_000}
	if err := gen.WriteMapEncodersToFile(out, "chat", chat.ActorDeclaration{}, chat.EmbedJoinLink{}); err != nil {
		fmt.Fprintln(os.Stderr, "cborgen:", err)
		os.Exit(1)
	}
	src, err := os.ReadFile(out)
	if err == nil {
		err = os.WriteFile(out, append([]byte("//go:build !cborgen\n\n"), bytes.TrimLeft(src, "\n")...), 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cborgen:", err)
		os.Exit(1)
	}
}
