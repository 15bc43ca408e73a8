package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// frames writes the engine's multiplexed format: stream number, then a text.
func frames(parts ...any) []byte {
	var b bytes.Buffer
	for i := 0; i < len(parts); i += 2 {
		text := parts[i+1].(string)
		header := [8]byte{byte(parts[i].(int))}
		binary.BigEndian.PutUint32(header[4:], uint32(len(text)))
		b.Write(header[:])
		b.WriteString(text)
	}
	return b.Bytes()
}

func collect(t *testing.T, raw []byte, tty bool) ([]string, error) {
	t.Helper()
	var got []string
	err := splitLogStream(context.Background(), bytes.NewReader(raw), tty, "logs of container c1", func(l LogLine) error {
		got = append(got, l.Stream+" "+l.Time.Format("05")+" "+l.Text)
		return nil
	})
	return got, err
}

func TestSplitLogStreamKeepsTheEnginesOrderAcrossStreams(t *testing.T) {
	got, err := collect(t, frames(
		1, "2026-12-03T10:00:01Z out one\n",
		2, "2026-12-03T10:00:02Z err one\n",
		1, "2026-12-03T10:00:03Z out two\n2026-12-03T10:00:04Z out ",
		2, "2026-12-03T10:00:05Z err two\n",
		1, "three\n",
		1, "2026-12-03T10:00:06Z no newline at the end",
	), false)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(got, []string{
		"stdout 01 out one",
		"stderr 02 err one",
		"stdout 03 out two",
		"stderr 05 err two",
		"stdout 04 out three", // a line spanning frames is emitted once it is whole
		"stdout 06 no newline at the end",
	}))
}

func TestSplitLogStreamTTYAndErrors(t *testing.T) {
	got, err := collect(t, []byte("2026-12-03T10:00:01Z a\r\nnot a timestamp\n"), true)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(got, []string{"stdout 01 a", "stdout 00 not a timestamp"}))

	_, err = collect(t, frames(1, "2026-12-03T10:00:01Z a\n", 3, "disk full"), false)
	assert.Check(t, is.ErrorContains(err, "logs of container c1: error from the engine in the log stream: disk full"))

	_, err = collect(t, []byte("2026-12-03T10:00:01Z plain text, not framed\n"), false)
	assert.Check(t, is.ErrorContains(err, "not the engine's multiplexed format"))

	// A stream cut inside a frame keeps what arrived.
	raw := frames(1, "2026-12-03T10:00:01Z a\n2026-12-03T10:00:02Z b\n")
	got, err = collect(t, raw[:len(raw)-3], false)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(got, []string{"stdout 01 a", "stdout 02 "}))

	// The caller's error stops the read and comes back as it is, also after ctx ended.
	stop := errors.New("stop")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = splitLogStream(ctx, bytes.NewReader(frames(1, "x\ny\n")), false, "logs", func(LogLine) error { return stop })
	assert.Check(t, errors.Is(err, stop), "%v", err)
}
