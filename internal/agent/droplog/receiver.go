package droplog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// Printer writes one JSON line per packet, and one per loss marker, to W; it is safe for
// several followers.
type Printer struct {
	mu sync.Mutex
	W  io.Writer
}

func (p *Printer) print(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err = p.W.Write(append(b, '\n'))
	return err
}

// Follower streams one agent's /droplog and prints it, reconnecting after failures and
// continuing where it left off, so that no line is printed twice or skipped silently.
type Follower struct {
	URL     string // e.g. http://10.3.164.1:9630/droplog
	Printer *Printer
	Client  *http.Client
	Log     *slog.Logger

	boot string
	seq  uint64
}

// Run follows until ctx ends.
func (f *Follower) Run(ctx context.Context) {
	if f.Client == nil {
		f.Client = &http.Client{}
	}
	if f.Log == nil {
		f.Log = slog.Default()
	}
	backoff := time.Second
	for ctx.Err() == nil {
		start := time.Now()
		err := f.stream(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			backoff = time.Second
		}
		f.Log.Warn("dropped-packet stream ended; reconnecting", "url", f.URL, "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (f *Follower) stream(ctx context.Context) error {
	u, err := url.Parse(f.URL)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("after", strconv.FormatUint(f.seq, 10))
	q.Set("boot", f.boot)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := f.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue // keepalive
		}
		var rec Record
		if err := json.Unmarshal(line, &rec); err != nil {
			return fmt.Errorf("decoding a record: %w", err)
		}
		if rec.Boot != f.boot {
			f.boot, f.seq = rec.Boot, 0 // the agent restarted: its sequence starts anew
		}
		if rec.Seq <= f.seq {
			continue
		}
		f.seq = rec.Seq
		var out any = rec.Entry
		if rec.Entry == nil {
			out = map[string]any{"lost": rec.Lost, "reason": rec.Reason, "source": f.URL}
		}
		if err := f.Printer.print(out); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.EOF
}

// FollowService follows every address a (headless) service name resolves to, re-resolving
// every interval, so that each firewall behind the name is streamed once.
func FollowService(ctx context.Context, hostPort, path string, interval time.Duration, p *Printer, log *slog.Logger) error {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return err
	}
	followers := map[string]context.CancelFunc{}
	defer func() {
		for _, cancel := range followers {
			cancel()
		}
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		addrs, err := net.DefaultResolver.LookupHost(ctx, host)
		if err != nil {
			log.Warn("resolving the firewalls failed", "name", host, "err", err)
		}
		seen := map[string]bool{}
		for _, a := range addrs {
			seen[a] = true
			if _, ok := followers[a]; ok {
				continue
			}
			fctx, cancel := context.WithCancel(ctx)
			followers[a] = cancel
			f := &Follower{URL: "http://" + net.JoinHostPort(a, port) + path, Printer: p, Log: log}
			log.Info("following a firewall", "url", f.URL)
			go f.Run(fctx)
		}
		for a, cancel := range followers {
			if !seen[a] && err == nil {
				cancel()
				delete(followers, a)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
