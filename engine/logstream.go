package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// splitLogStream reads a logs stream written with timestamps: raw for a TTY, else
// stdout and stderr multiplexed in frames. The frames are read in the order the engine
// sent them (its timestamp order), on the caller's goroutine: lines of the two streams
// keep their order against each other, which a merge of several containers relies on.
func splitLogStream(ctx context.Context, rc io.Reader, tty bool, what string, emit func(LogLine) error) error {
	var err error
	if tty {
		err = readLogLines(rc, "stdout", emit)
	} else {
		err = readLogFrames(rc, emit)
	}
	var emitted errLogEmit
	if errors.As(err, &emitted) {
		return fmt.Errorf("%s: %w", what, emitted.err)
	}
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// errLogEmit wraps an error of the caller's emit, so that it is returned as it is.
type errLogEmit struct{ err error }

func (e errLogEmit) Error() string { return e.err.Error() }
func (e errLogEmit) Unwrap() error { return e.err }

// The stream numbers of the engine's multiplexed frames (moby's stdcopy).
const (
	frameStdout   = 1
	frameStderr   = 2
	frameSystem   = 3
	frameHeader   = 8
	frameSizeAt   = 4
	maxFrameBytes = 64 << 20 // a frame is one log message (the engine splits at 16 KiB)
)

// readLogFrames demultiplexes the engine's frames ([stream, 0, 0, 0, size uint32 BE]
// then size bytes) into lines of each stream. A line may span frames; what is left
// of a stream without a newline at the end is its last line.
func readLogFrames(r io.Reader, emit func(LogLine) error) error {
	br := bufio.NewReaderSize(r, 64*1024)
	var header [frameHeader]byte
	var partial [3][]byte // by stream number
	var frame []byte
	for {
		// The stream ends at a frame's end; a stream cut inside a frame (a closed
		// connection) keeps what arrived of it, as moby's stdcopy does.
		if _, err := io.ReadFull(br, header[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			return err
		}
		size := binary.BigEndian.Uint32(header[frameSizeAt:])
		if size > maxFrameBytes {
			return fmt.Errorf("a log frame of %d bytes: the stream is not the engine's multiplexed format", size)
		}
		if cap(frame) < int(size) {
			frame = make([]byte, size)
		}
		frame = frame[:size]
		n, err := io.ReadFull(br, frame)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return err
		}
		frame = frame[:n]
		stream := header[0]
		switch stream {
		case frameStdout, frameStderr:
		case frameSystem:
			return fmt.Errorf("error from the engine in the log stream: %s", frame)
		default:
			return fmt.Errorf("a log frame of unknown stream %d: the stream is not the engine's multiplexed format", stream)
		}
		name := "stdout"
		if stream == frameStderr {
			name = "stderr"
		}
		data := frame
		if len(partial[stream]) > 0 {
			data = append(partial[stream], frame...)
			partial[stream] = partial[stream][:0]
		}
		for {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break
			}
			if err := emit(parseLogLine(string(data[:i]), name)); err != nil {
				return errLogEmit{err}
			}
			data = data[i+1:]
		}
		if len(data) > 0 {
			partial[stream] = append(partial[stream][:0], data...)
		}
	}
	for stream, rest := range partial {
		if len(rest) == 0 {
			continue
		}
		name := "stdout"
		if stream == frameStderr {
			name = "stderr"
		}
		if err := emit(parseLogLine(string(rest), name)); err != nil {
			return errLogEmit{err}
		}
	}
	return nil
}

// readLogLines splits "TIMESTAMP TEXT\n" lines, as the engine writes them with timestamps.
func readLogLines(r io.Reader, stream string, emit func(LogLine) error) error {
	br := bufio.NewReaderSize(r, 64*1024)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			if eerr := emit(parseLogLine(strings.TrimSuffix(line, "\n"), stream)); eerr != nil {
				return errLogEmit{eerr}
			}
		}
		if err != nil {
			return nil
		}
	}
}

// parseLogLine splits "TIMESTAMP TEXT"; a line without a timestamp is all text.
func parseLogLine(line, stream string) LogLine {
	line = strings.TrimSuffix(line, "\r")
	ts, text, _ := strings.Cut(line, " ")
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		text = line
	}
	return LogLine{Time: t, Stream: stream, Text: text}
}
