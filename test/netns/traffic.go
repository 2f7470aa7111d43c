package netns

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// probeTimeout bounds how long a probe waits for an answer; a dropped SYN or datagram shows
// up as no answer within it.
const probeTimeout = 1500 * time.Millisecond

// Server answers TCP connections and UDP datagrams inside a namespace and remembers the
// source addresses it saw.
type Server struct {
	mu    sync.Mutex
	peers []string
	close []func()
}

// Serve starts listeners in ns on every address ("tcp"/"udp", "[::]:443" style). Listening on
// the wildcard address covers every IP of the namespace, including load-balancer IPs.
func (l *Lab) Serve(ns string, listens ...[2]string) *Server {
	l.t.Helper()
	s := &Server{}
	l.t.Cleanup(s.Close)
	for _, ln := range listens {
		proto, addr := ln[0], ln[1]
		err := Do(ns, func() error {
			switch proto {
			case "tcp":
				lis, err := net.Listen("tcp", addr)
				if err != nil {
					return err
				}
				s.close = append(s.close, func() { lis.Close() })
				go s.acceptLoop(lis)
			case "udp":
				pc, err := net.ListenPacket("udp", addr)
				if err != nil {
					return err
				}
				s.close = append(s.close, func() { pc.Close() })
				go s.echoLoop(pc)
			default:
				return fmt.Errorf("unknown protocol %q", proto)
			}
			return nil
		})
		if err != nil {
			l.t.Fatalf("serve %s %s in %s: %v", proto, addr, ns, err)
		}
	}
	return s
}

func (s *Server) acceptLoop(lis net.Listener) {
	for {
		c, err := lis.Accept()
		if err != nil {
			return
		}
		s.saw(c.RemoteAddr())
		_, _ = c.Write([]byte("ok"))
		_ = c.Close()
	}
}

func (s *Server) echoLoop(pc net.PacketConn) {
	buf := make([]byte, 64)
	for {
		_, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		s.saw(from)
		_, _ = pc.WriteTo([]byte("ok"), from)
	}
}

func (s *Server) saw(a net.Addr) {
	host, _, _ := net.SplitHostPort(a.String())
	s.mu.Lock()
	s.peers = append(s.peers, host)
	s.mu.Unlock()
}

// Peers returns the source addresses seen so far.
func (s *Server) Peers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.peers...)
}

// Close stops all listeners.
func (s *Server) Close() {
	for _, c := range s.close {
		c()
	}
	s.close = nil
}

// Probe is one connection attempt: from namespace NS (optionally from address Src) to Dst
// ("host:port") over Proto ("tcp" or "udp"). Want tells whether it must succeed.
type Probe struct {
	NS, Src, Proto, Dst string
	Want                bool
}

func (p Probe) String() string {
	src := p.Src
	if src == "" {
		src = "(default)"
	}
	verb := "must be dropped"
	if p.Want {
		verb = "must pass"
	}
	return fmt.Sprintf("%s %s -> %s from %s %s", p.NS, p.Proto, p.Dst, src, verb)
}

// Connect tries one connection and returns nil if the server answered.
func Connect(ns, src, proto, dst string) error {
	return Do(ns, func() error {
		d := net.Dialer{Timeout: probeTimeout}
		if src != "" {
			ip := net.ParseIP(src)
			switch proto {
			case "tcp":
				d.LocalAddr = &net.TCPAddr{IP: ip}
			case "udp":
				d.LocalAddr = &net.UDPAddr{IP: ip}
			}
		}
		c, err := d.Dial(proto, dst)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(probeTimeout))
		if proto == "udp" {
			if _, err := c.Write([]byte("hi")); err != nil {
				return err
			}
		}
		buf := make([]byte, 2)
		if _, err := c.Read(buf); err != nil {
			return err
		}
		if string(buf) != "ok" {
			return errors.New("unexpected answer")
		}
		return nil
	})
}

// Expect runs all probes in parallel and reports every one whose outcome is wrong.
func (l *Lab) Expect(probes ...Probe) {
	l.t.Helper()
	errs := make([]error, len(probes))
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = Connect(p.NS, p.Src, p.Proto, p.Dst)
		}()
	}
	wg.Wait()
	for i, p := range probes {
		switch {
		case p.Want && errs[i] != nil:
			l.t.Errorf("%s, but failed: %v", p, errs[i])
		case !p.Want && errs[i] == nil:
			l.t.Errorf("%s, but passed", p)
		}
	}
}
