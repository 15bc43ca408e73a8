package router

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// accessLog writes one JSON object per line. Lines are built with strconv appends in
// a pooled buffer (no fmt, no encoding/json reflection) and written whole under a
// lock, so concurrent requests never interleave inside a line.
type accessLog struct {
	mu sync.Mutex
	w  io.Writer
}

var logBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (a *accessLog) write(start time.Time, route, backend, group string, req *http.Request, remote string, status int, d time.Duration, bytes int64) {
	bp := logBuffers.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, `{"time":"`...)
	b = start.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","route":`...)
	b = appendJSONString(b, route)
	b = append(b, `,"backend":`...)
	b = appendJSONString(b, backend)
	b = append(b, `,"group":`...)
	b = appendJSONString(b, group)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, req.Method)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, req.URL.Path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(d)/float64(time.Millisecond), 'f', 3, 64)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, bytes, 10)
	b = append(b, `,"remote":`...)
	b = appendJSONString(b, remote)
	b = append(b, "}\n"...)
	a.mu.Lock()
	_, _ = a.w.Write(b)
	a.mu.Unlock()
	*bp = b
	logBuffers.Put(bp)
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does, so every line stays valid JSON whatever a client sends.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
