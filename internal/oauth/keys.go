package oauth

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
)

// GenerateClientKey returns a new P-256 (ES256) private key for the
// confidential client, encoded as a multibase string ("z…") that
// ParseClientKey reads back. It returns an error only if the system random
// source fails.
func GenerateClientKey() (string, error) {
	k, err := atcrypto.GeneratePrivateKeyP256()
	if err != nil {
		return "", fmt.Errorf("generate client key: %w", err)
	}
	return k.Multibase(), nil
}

// ParseClientKey reads a P-256 private key given as multibase (from
// GenerateClientKey) or as PEM (PKCS#8 "PRIVATE KEY" or SEC 1 "EC PRIVATE
// KEY"). It returns an error for anything else, including K-256 keys, which
// atproto OAuth does not allow for client authentication.
func ParseClientKey(s string) (atcrypto.PrivateKey, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("client key is empty")
	}
	if strings.HasPrefix(s, "-----BEGIN") {
		return parsePEMKey(s)
	}
	k, err := atcrypto.ParsePrivateMultibase(s)
	if err != nil {
		return nil, fmt.Errorf("client key is not a multibase private key: %w", err)
	}
	p, ok := k.(*atcrypto.PrivateKeyP256)
	if !ok {
		return nil, fmt.Errorf("client key must be P-256 (ES256), got %T", k)
	}
	return p, nil
}

func parsePEMKey(s string) (atcrypto.PrivateKey, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("client key: bad PEM")
	}
	var ec *ecdsa.PrivateKey
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("client key: %w", err)
		}
		var ok bool
		if ec, ok = k.(*ecdsa.PrivateKey); !ok {
			return nil, fmt.Errorf("client key must be an EC P-256 key, got %T", k)
		}
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("client key: %w", err)
		}
		ec = k
	default:
		return nil, fmt.Errorf("client key: unsupported PEM block %q", block.Type)
	}
	if ec.Curve.Params().Name != "P-256" {
		return nil, fmt.Errorf("client key must be P-256, got %s", ec.Curve.Params().Name)
	}
	raw, err := ec.Bytes()
	if err != nil {
		return nil, fmt.Errorf("client key: %w", err)
	}
	return atcrypto.ParsePrivateBytesP256(raw)
}

// KeyID returns a stable key id for a client key: the first 16 hex digits
// of the SHA-256 of its compressed public key. It returns an error if the
// public key cannot be derived.
func KeyID(k atcrypto.PrivateKey) (string, error) {
	pub, err := k.PublicKey()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(pub.Bytes())
	return hex.EncodeToString(sum[:8]), nil
}

// GenerateEncryptionKey returns 32 random bytes, base64-encoded, for
// Config.EncryptionKey (read back with ParseEncryptionKey). It returns an
// error only if the system random source fails.
func GenerateEncryptionKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate encryption key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// ParseEncryptionKey decodes a base64 (standard or URL alphabet, padded or
// not) string of exactly 32 bytes. It returns an error naming the problem
// (never echoing the key) otherwise.
func ParseEncryptionKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != 32 {
				return nil, fmt.Errorf("encryption key must be 32 bytes, got %d", len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("encryption key is not valid base64")
}
