package devchat

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/golang-jwt/jwt/v5"
)

// authenticate checks the PDS-minted service token on r and returns its
// issuer. The claims are first read without verification so that each fault
// gets the error name @atproto/xrpc-server's verifyJwt uses (BadJwt,
// JwtExpired, BadJwtAudience, BadJwtLexiconMethod); indigo's
// ServiceAuthValidator then checks everything again, including the signature
// (ES256K or ES256) against the issuer's #atproto key from the Directory.
// Every refusal is a 401.
func (s *Server) authenticate(r *http.Request, nsid syntax.NSID) (syntax.DID, *xrpcError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", unauthorized("AuthMissing", "Authentication Required")
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", unauthorized("AuthMissing", "Authentication Required: expected a Bearer service token")
	}
	token = strings.TrimSpace(token)

	claims, err := peekClaims(token)
	if err != nil {
		return "", unauthorized("BadJwt", "poorly formatted jwt")
	}
	if claims.Exp == 0 {
		return "", unauthorized("BadJwt", "jwt has no expiry")
	}
	if float64(s.now().Unix()) > claims.Exp {
		return "", unauthorized("JwtExpired", "jwt expired")
	}
	if claims.Aud != s.did.String() {
		return "", unauthorized("BadJwtAudience", "jwt audience does not match service did")
	}
	if claims.Lxm != nsid.String() {
		msg := `bad jwt lexicon method ("lxm"). must match: ` + nsid.String()
		if claims.Lxm == "" {
			msg = `missing jwt lexicon method ("lxm"). must match: ` + nsid.String()
		}
		return "", unauthorized("BadJwtLexiconMethod", msg)
	}

	iss, err := s.validator.Validate(r.Context(), token, &nsid)
	switch {
	case err == nil:
		return iss, nil
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "", unauthorized("BadJwtSignature", "jwt signature does not match jwt issuer")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "", unauthorized("BadJwtIssuer", "could not resolve the jwt issuer's signing key")
	case errors.Is(err, jwt.ErrTokenExpired):
		return "", unauthorized("JwtExpired", "jwt expired")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "", unauthorized("BadJwt", "jwt issued in the future")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "", unauthorized("BadJwtAudience", "jwt audience does not match service did")
	default:
		return "", unauthorized("BadJwt", "invalid jwt: "+err.Error())
	}
}

func unauthorized(name, message string) *xrpcError {
	return &xrpcError{Status: http.StatusUnauthorized, Name: name, Message: message}
}

// peekedClaims are the service-auth claims read before verification.
type peekedClaims struct {
	Iss string  `json:"iss"`
	Aud string  `json:"aud"`
	Exp float64 `json:"exp"`
	Lxm string  `json:"lxm"`
}

// peekClaims decodes a compact JWS payload without verifying it. It fails on
// anything that is not three base64url parts with a JSON header and payload.
func peekClaims(token string) (peekedClaims, error) {
	var c peekedClaims
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[2] == "" {
		return c, errors.New("not a compact JWS")
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return c, err
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(hb, &header); err != nil || header.Alg == "" {
		return c, errors.New("bad JWS header")
	}
	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return c, err
	}
	// aud may be a string or a one-element array.
	var raw struct {
		peekedClaims
		Aud json.RawMessage `json:"aud"`
	}
	if err := json.Unmarshal(pb, &raw); err != nil {
		return c, err
	}
	c = raw.peekedClaims
	if len(raw.Aud) > 0 {
		var one string
		var many []string
		switch {
		case json.Unmarshal(raw.Aud, &one) == nil:
			c.Aud = one
		case json.Unmarshal(raw.Aud, &many) == nil && len(many) == 1:
			c.Aud = many[0]
		default:
			c.Aud = ""
		}
	}
	return c, nil
}
