package dm

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"sync"
	"time"

	"github.com/skydm/skydm/internal/sendtokens"
)

// revCache caches one value per key, fetched once however many callers ask
// at the same time (one flight per key). A cached value is reused while it
// is younger than ttl and was fetched for a rev at least as new as the one
// asked for ("" asks for no particular rev): callers that learn of a newer
// log event pass its rev and get a fresh value, fetched once for all.
type revCache[K comparable, V any] struct {
	ttl time.Duration
	now func() time.Time
	max int // entries kept; beyond it the map is cleared

	mu sync.Mutex
	m  map[K]*revEntry[V]
}

type revEntry[V any] struct {
	v      V
	rev    string
	at     time.Time
	ok     bool
	flight *revFlight[V]
}

type revFlight[V any] struct {
	done chan struct{}
	rev  string
	v    V
	err  error
}

func newRevCache[K comparable, V any](ttl time.Duration, now func() time.Time, max int) *revCache[K, V] {
	return &revCache[K, V]{ttl: ttl, now: now, max: max, m: map[K]*revEntry[V]{}}
}

// get returns the value for k, cached or from fetch. fetch runs without
// the caller's cancellation (other callers may be waiting for it) but
// bounded by backgroundTimeout; a caller whose ctx ends stops waiting with
// ctx's error. Errors are not cached.
func (c *revCache[K, V]) get(ctx context.Context, k K, minRev string, fetch func(context.Context) (V, error)) (V, error) {
	c.mu.Lock()
	e := c.m[k]
	if e == nil {
		if len(c.m) >= c.max {
			clear(c.m)
		}
		e = &revEntry[V]{}
		c.m[k] = e
	}
	if e.ok && c.now().Sub(e.at) < c.ttl && e.rev >= minRev {
		v := e.v
		c.mu.Unlock()
		return v, nil
	}
	f := e.flight
	if f == nil || f.rev < minRev {
		// What is fetched now is at least as new as anything cached.
		f = &revFlight[V]{done: make(chan struct{}), rev: max(minRev, e.rev)}
		e.flight = f
		go func() {
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), backgroundTimeout)
			defer cancel()
			f.v, f.err = fetch(fctx)
			c.mu.Lock()
			if c.m[k] == e {
				if f.err == nil && f.rev >= e.rev {
					e.v, e.rev, e.at, e.ok = f.v, f.rev, c.now(), true
				}
				if e.flight == f {
					e.flight = nil
				}
			}
			c.mu.Unlock()
			close(f.done)
		}()
	}
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.v, f.err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

// peek returns the cached value for k when it is younger than ttl.
func (c *revCache[K, V]) peek(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[k]; e != nil && e.ok && c.now().Sub(e.at) < c.ttl {
		return e.v, true
	}
	var zero V
	return zero, false
}

// forget drops what is cached for k; a fetch under way is not cached.
func (c *revCache[K, V]) forget(k K) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}

// formTokens issues and checks the one-time tokens of the send form. A
// token is an HMAC over the account, the conversation, a random nonce and
// an expiry, so nothing is stored per page view; the nonces of tokens that
// were used are recorded (TokenUses) until they expire, so a second submit
// of the same form is recognised and does not send again.
type formTokens struct {
	key []byte
	now func() time.Time
}

// tokenTTL is how long a send form stays valid.
const tokenTTL = 12 * time.Hour

func newFormTokens(key []byte, now func() time.Time) *formTokens {
	return &formTokens{key: key, now: now}
}

const (
	tokenNonceLen = 12
	tokenMACLen   = 16
)

func (f *formTokens) mac(did, convoID string, nonceExp []byte) []byte {
	m := hmac.New(sha256.New, f.key)
	m.Write([]byte(did))
	m.Write([]byte{0})
	m.Write([]byte(convoID))
	m.Write([]byte{0})
	m.Write(nonceExp)
	return m.Sum(nil)[:tokenMACLen]
}

// issue returns a fresh token for a send form of did in convoID.
func (f *formTokens) issue(did, convoID string) string {
	b := make([]byte, tokenNonceLen+8, tokenNonceLen+8+tokenMACLen)
	rand.Read(b[:tokenNonceLen]) // never fails (crypto/rand since Go 1.24)
	binary.BigEndian.PutUint64(b[tokenNonceLen:], uint64(f.now().Add(tokenTTL).Unix()))
	b = append(b, f.mac(did, convoID, b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// verify checks token for did and convoID and returns its nonce and expiry;
// ok is false for a forged, foreign or expired token.
func (f *formTokens) verify(token, did, convoID string) (nonce string, exp time.Time, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != tokenNonceLen+8+tokenMACLen {
		return "", time.Time{}, false
	}
	body := b[:tokenNonceLen+8]
	if !hmac.Equal(b[tokenNonceLen+8:], f.mac(did, convoID, body)) {
		return "", time.Time{}, false
	}
	exp = time.Unix(int64(binary.BigEndian.Uint64(body[tokenNonceLen:])), 0)
	if !f.now().Before(exp) {
		return "", time.Time{}, false
	}
	return string(body[:tokenNonceLen]), exp, true
}

// TokenUses records which send-form tokens were spent, by nonce. Claim
// marks a token as sending and says whether the caller may send: the token
// was never used, or its last use failed; otherwise it returns the earlier
// use (sending, or sent with its message id). Finish records the outcome:
// the message id, or "" when the send failed (the token may be used
// again). *sendtokens.Store implements it in the database, shared by the
// instances on it.
type TokenUses interface {
	Claim(ctx context.Context, nonce string, exp time.Time) (prev sendtokens.Use, ok bool, err error)
	Finish(ctx context.Context, nonce, msgID string) error
}

// memoryTokenUses is TokenUses in process memory, for one instance (and
// tests without a database). A nonce is kept until its token expires.
type memoryTokenUses struct {
	now func() time.Time

	mu      sync.Mutex
	used    map[string]*tokenUse // by nonce
	pruneAt int
}

// tokenUse is a spent token: sending while msgID is "".
type tokenUse struct {
	msgID string
	exp   time.Time
}

func newMemoryTokenUses(now func() time.Time) *memoryTokenUses {
	return &memoryTokenUses{now: now, used: map[string]*tokenUse{}, pruneAt: 1024}
}

func (m *memoryTokenUses) Claim(_ context.Context, nonce string, exp time.Time) (sendtokens.Use, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if u := m.used[nonce]; u != nil {
		return sendtokens.Use{Sent: u.msgID != "", MessageID: u.msgID}, false, nil
	}
	if len(m.used) >= m.pruneAt {
		now := m.now()
		for k, u := range m.used {
			if !now.Before(u.exp) {
				delete(m.used, k)
			}
		}
		m.pruneAt = max(1024, 2*len(m.used))
	}
	m.used[nonce] = &tokenUse{exp: exp}
	return sendtokens.Use{}, true, nil
}

func (m *memoryTokenUses) Finish(_ context.Context, nonce, msgID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if msgID == "" {
		delete(m.used, nonce)
	} else if u := m.used[nonce]; u != nil {
		u.msgID = msgID
	}
	return nil
}

// nameCache remembers the names shown for DIDs on rendered pages, so live
// updates can name a message's sender without an upstream call.
type nameCache struct {
	mu sync.Mutex
	m  map[string]string
}

func newNameCache() *nameCache { return &nameCache{m: map[string]string{}} }

const maxNames = 20000

func (c *nameCache) put(did, name string) {
	if did == "" || name == "" {
		return
	}
	c.mu.Lock()
	if len(c.m) >= maxNames {
		clear(c.m)
	}
	c.m[did] = name
	c.mu.Unlock()
}

func (c *nameCache) get(did string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[did]
}
