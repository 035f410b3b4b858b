//go:build cborgen

package chat

import "io"

// Stub encoders, so that internal/lex/cborgen can import this package while
// it writes the real ones (cbor_gen.go, built without the cborgen tag).

func (t *ActorDeclaration) MarshalCBOR(io.Writer) error   { return nil }
func (t *ActorDeclaration) UnmarshalCBOR(io.Reader) error { return nil }
func (t *EmbedJoinLink) MarshalCBOR(io.Writer) error      { return nil }
func (t *EmbedJoinLink) UnmarshalCBOR(io.Reader) error    { return nil }
