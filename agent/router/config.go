package router

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ConfigVersion is the version of the Config format this package writes and reads.
// A Config with Version 0 is read as this version; a higher version is refused, so an
// old agent never half-understands a newer plugin.
const ConfigVersion = 1

// Default values filled in by Config.Normalize.
const (
	DefaultDrainTimeout   = 30 * time.Second
	DefaultHealthInterval = 2 * time.Second
	// DefaultSniffWindow is how long an auto route waits for a client's first bytes
	// before it takes the connection for a server-first protocol (sniff.go says why).
	DefaultSniffWindow = 200 * time.Millisecond
)

// Protocol is how a route forwards traffic.
type Protocol string

const (
	// HTTP proxies HTTP/1.1 requests (with Upgrade, e.g. WebSocket) and balances per request.
	HTTP Protocol = "http"
	// TCP forwards bytes and balances per connection.
	TCP Protocol = "tcp"
	// Auto decides per connection by its first bytes: an HTTP/1.x request line is served
	// as HTTP, anything else (or a client that waits for the server to speak first) as TCP.
	Auto Protocol = "auto"
)

// Config is the whole desired state of a router. Apply replaces the previous one.
type Config struct {
	Version int     `json:"version"`
	Routes  []Route `json:"routes"`
}

// Route is one listening address and the backends it balances over.
type Route struct {
	// Name identifies the route (usually the compose service); stats are kept per name.
	Name string `json:"name"`
	// Listen is the TCP address the router binds, e.g. ":8080". Addresses are compared
	// as written: the same string keeps its socket across Applies. Port 0 binds a free
	// port (see Router.Addr), kept as long as the string stays in the config.
	Listen string `json:"listen"`
	// Protocol is "http" (the default when empty), "tcp" or "auto".
	Protocol Protocol `json:"protocol,omitempty"`
	// SniffWindow is how long an auto route waits for a silent client before it connects
	// to a backend so a server-first protocol's greeting can arrive; it defaults to
	// DefaultSniffWindow and is refused on other protocols.
	SniffWindow Duration `json:"sniff_window,omitempty"`
	// HealthPath enables an active HTTP check (GET, 2xx/3xx is healthy) of every backend.
	// Empty means no active check: the plugin only adds backends it has seen healthy, and
	// passive checks (dial failures) cover crashes.
	HealthPath string `json:"health_path,omitempty"`
	// HealthInterval is the active check period; it defaults to DefaultHealthInterval.
	HealthInterval Duration `json:"health_interval,omitempty"`
	// DrainTimeout bounds how long a removed backend may keep in-flight requests and
	// open connections; it defaults to DefaultDrainTimeout.
	DrainTimeout Duration  `json:"drain_timeout,omitempty"`
	Backends     []Backend `json:"backends"`
}

// Backend is one upstream of a route.
type Backend struct {
	// ID is unique within the route (e.g. the container name). A backend keeps its
	// counters and connections across Applies as long as ID and Address stay the same.
	ID string `json:"id"`
	// Address is "host:port" on the project network.
	Address string `json:"address"`
	// Weight is the relative share of new requests/connections; 0 means none.
	Weight int `json:"weight"`
	// Group is free-form (revision, colour) and reported in stats for canary analysis.
	Group string `json:"group,omitempty"`
}

// Duration is a time.Duration written in JSON as a Go duration string ("30s", "1m30s").
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, time.Duration(d).String()), nil
}

// UnmarshalJSON reads a duration string such as "500ms".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"30s\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Normalize validates the config and returns a deep copy with defaults filled in
// (version, protocol, sniff window, drain timeout, health interval). Apply uses it; it is exported so
// the plugin can validate a config before sending it.
func (c Config) Normalize() (Config, error) {
	if c.Version < 0 || c.Version > ConfigVersion {
		return Config{}, fmt.Errorf("config version %d is not supported (this router reads version %d)", c.Version, ConfigVersion)
	}
	out := Config{Version: ConfigVersion, Routes: make([]Route, 0, len(c.Routes))}
	names := map[string]bool{}
	listens := map[string]string{}
	for i, r := range c.Routes {
		where := fmt.Sprintf("routes[%d]", i)
		if r.Name != "" {
			where = fmt.Sprintf("route %q", r.Name)
		}
		if r.Name == "" {
			return Config{}, fmt.Errorf("%s: name is required", where)
		}
		if names[r.Name] {
			return Config{}, fmt.Errorf("%s: duplicate route name", where)
		}
		names[r.Name] = true
		if _, _, err := net.SplitHostPort(r.Listen); err != nil {
			return Config{}, fmt.Errorf("%s: listen %q: %v", where, r.Listen, err)
		}
		if other, ok := listens[r.Listen]; ok {
			return Config{}, fmt.Errorf("%s: listen %q is already used by route %q", where, r.Listen, other)
		}
		listens[r.Listen] = r.Name
		switch r.Protocol {
		case "":
			r.Protocol = HTTP
		case HTTP, TCP, Auto:
		default:
			return Config{}, fmt.Errorf("%s: protocol %q is not one of http, tcp, auto", where, r.Protocol)
		}
		switch {
		case r.SniffWindow < 0:
			return Config{}, fmt.Errorf("%s: sniff_window must not be negative", where)
		case r.SniffWindow != 0 && r.Protocol != Auto:
			return Config{}, fmt.Errorf("%s: sniff_window needs protocol auto, not %s", where, r.Protocol)
		case r.SniffWindow == 0 && r.Protocol == Auto:
			r.SniffWindow = Duration(DefaultSniffWindow)
		}
		if r.HealthPath != "" {
			if r.Protocol == TCP {
				return Config{}, fmt.Errorf("%s: health_path needs protocol http or auto", where)
			}
			if !strings.HasPrefix(r.HealthPath, "/") {
				return Config{}, fmt.Errorf("%s: health_path %q must start with /", where, r.HealthPath)
			}
		}
		if r.HealthInterval < 0 || r.DrainTimeout < 0 {
			return Config{}, fmt.Errorf("%s: durations must not be negative", where)
		}
		if r.HealthInterval == 0 {
			r.HealthInterval = Duration(DefaultHealthInterval)
		}
		if r.DrainTimeout == 0 {
			r.DrainTimeout = Duration(DefaultDrainTimeout)
		}
		ids := map[string]bool{}
		backends := make([]Backend, 0, len(r.Backends))
		for j, b := range r.Backends {
			if b.ID == "" {
				return Config{}, fmt.Errorf("%s: backends[%d]: id is required", where, j)
			}
			if ids[b.ID] {
				return Config{}, fmt.Errorf("%s: backend %q: duplicate id", where, b.ID)
			}
			ids[b.ID] = true
			if host, port, err := net.SplitHostPort(b.Address); err != nil || host == "" || port == "" {
				return Config{}, fmt.Errorf("%s: backend %q: address %q must be host:port", where, b.ID, b.Address)
			}
			if b.Weight < 0 || b.Weight > MaxWeight {
				return Config{}, fmt.Errorf("%s: backend %q: weight %d is outside 0..%d", where, b.ID, b.Weight, MaxWeight)
			}
			backends = append(backends, b)
		}
		r.Backends = backends
		out.Routes = append(out.Routes, r)
	}
	return out, nil
}

func (c Config) clone() Config {
	out := Config{Version: c.Version, Routes: slices.Clone(c.Routes)}
	for i := range out.Routes {
		out.Routes[i].Backends = slices.Clone(out.Routes[i].Backends)
	}
	return out
}

// LoadConfigFile reads a config written by SaveConfigFile (or by hand). A missing file
// is reported with an error matching fs.ErrNotExist, so an agent can start empty.
func LoadConfigFile(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	cfg, err := DecodeConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// DecodeConfig parses and normalizes a JSON config. Unknown fields are errors: a typo
// must not silently turn into a default.
func DecodeConfig(data []byte) (Config, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("invalid config: %w", err)
	}
	if dec.More() {
		return Config{}, errors.New("invalid config: trailing data after the JSON object")
	}
	return cfg.Normalize()
}

// SaveConfigFile validates cfg and writes it atomically: a temporary file in the same
// directory is written, synced and renamed over path, so a crash leaves either the old
// or the new file, never a torn one.
func SaveConfigFile(path string, cfg Config) (err error) {
	cfg, err = cfg.Normalize()
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// Make the rename itself durable; not every filesystem supports syncing a directory.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
