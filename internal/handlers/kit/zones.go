package kit

import (
	"sync"
	"time"
)

// zoneCache loads time zones by IANA name once.
type zoneCache struct {
	mu sync.Mutex
	m  map[string]*time.Location
}

func newZoneCache() *zoneCache { return &zoneCache{m: map[string]*time.Location{}} }

// get returns the zone called name, or UTC for a name that is not a valid
// IANA zone name.
func (c *zoneCache) get(name string) *time.Location {
	if !zoneName(name) {
		return time.UTC
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.m[name]; ok {
		return l
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		l = time.UTC
	}
	if len(c.m) >= 1000 {
		clear(c.m)
	}
	c.m[name] = l
	return l
}

// zoneName reports whether s looks like an IANA zone name
// ("Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5").
func zoneName(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '/' || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '/' || c == '_' || c == '-' || c == '+') {
			return false
		}
	}
	return true
}
