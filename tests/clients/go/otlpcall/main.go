// Command otlpcall makes OTLP/gRPC Export calls with grpc-go, the HTTP/2 stack of the
// OpenTelemetry Collector's OTLP exporter and of the Go SDK, so the proxy's tests see
// grpc-go's own HTTP/2 behaviour: BDP-estimation PINGs and window growth, keepalive
// PINGs, its GOAWAY handling. All calls share ONE grpc.ClientConn (one connection unless
// it is lost). Messages are raw bytes (no generated code): a valid
// ExportTraceServiceRequest holding one unknown bytes field, padded to --message-size.
//
// Output: one JSON line per call, then one summary line. Exit 0 when every call ended
// with a code in --expect-code, 1 when one did not, 2 on bad usage.
// Built in GOPATH mode against Debian's golang-google-grpc-dev
// (scripts/build-go-clients.sh).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io/ioutil"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/grpclog"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// rawCodec passes []byte messages through unchanged.
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}

// Name is only a registry key: a forced codec leaves content-type "application/grpc", as the
// Collector sends it.
func (rawCodec) Name() string { return "raw" }

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// logCounter is grpc-go's logger: every line to stderr, and a count of the GOAWAYs that
// grpc-go reports (it logs ENHANCE_YOUR_CALM, e.g. "too_many_pings", by name).
type logCounter struct {
	calm int64
}

func (l *logCounter) log(level string, text string) {
	if strings.Contains(text, "EnhanceYourCalm") || strings.Contains(text, "too_many_pings") {
		atomic.AddInt64(&l.calm, 1)
	}
	fmt.Fprintf(os.Stderr, "grpc %s: %s\n", level, strings.TrimRight(text, "\n"))
}
func (l *logCounter) Info(a ...interface{})               { l.log("info", fmt.Sprint(a...)) }
func (l *logCounter) Infoln(a ...interface{})             { l.log("info", fmt.Sprintln(a...)) }
func (l *logCounter) Infof(f string, a ...interface{})    { l.log("info", fmt.Sprintf(f, a...)) }
func (l *logCounter) Warning(a ...interface{})            { l.log("warning", fmt.Sprint(a...)) }
func (l *logCounter) Warningln(a ...interface{})          { l.log("warning", fmt.Sprintln(a...)) }
func (l *logCounter) Warningf(f string, a ...interface{}) { l.log("warning", fmt.Sprintf(f, a...)) }
func (l *logCounter) Error(a ...interface{})              { l.log("error", fmt.Sprint(a...)) }
func (l *logCounter) Errorln(a ...interface{})            { l.log("error", fmt.Sprintln(a...)) }
func (l *logCounter) Errorf(f string, a ...interface{})   { l.log("error", fmt.Sprintf(f, a...)) }
func (l *logCounter) Fatal(a ...interface{})              { l.log("fatal", fmt.Sprint(a...)); os.Exit(1) }
func (l *logCounter) Fatalln(a ...interface{})            { l.log("fatal", fmt.Sprintln(a...)); os.Exit(1) }
func (l *logCounter) Fatalf(f string, a ...interface{}) {
	l.log("fatal", fmt.Sprintf(f, a...))
	os.Exit(1)
}
func (l *logCounter) V(level int) bool { return level <= 2 }

// exportRequest is a valid ExportTraceServiceRequest of exactly n bytes (n == 0 or n >= 2):
// no resource_spans, one field 15 (unknown to the schema, skipped by parsers) of type
// bytes, filled with 'x'. Tag 0x7a = (15 << 3) | 2.
func exportRequest(n int) []byte {
	if n == 0 {
		return []byte{}
	}
	for lenBytes := 1; lenBytes <= 5; lenBytes++ {
		payload := n - 1 - lenBytes
		if payload < 0 {
			break
		}
		varint := make([]byte, 0, 5)
		for v := uint64(payload); ; v >>= 7 {
			if v < 0x80 {
				varint = append(varint, byte(v))
				break
			}
			varint = append(varint, byte(v&0x7f|0x80))
		}
		if len(varint) != lenBytes {
			continue
		}
		msg := make([]byte, 0, n)
		msg = append(msg, 0x7a)
		msg = append(msg, varint...)
		for len(msg) < n {
			msg = append(msg, 'x')
		}
		return msg
	}
	return nil
}

type callResult struct {
	Call          int               `json:"call"`
	Round         int               `json:"round"`
	ID            string            `json:"id,omitempty"`
	Code          int               `json:"code"`
	CodeName      string            `json:"code_name"`
	Message       string            `json:"message"`
	RequestBytes  int               `json:"request_bytes"`
	ResponseBytes int               `json:"response_bytes"`
	Trailers      map[string]string `json:"trailers"`
	Millis        int64             `json:"ms"`
}

type summary struct {
	Summary  bool           `json:"summary"`
	Calls    int            `json:"calls"`
	Codes    map[string]int `json:"codes"`
	Dials    int64          `json:"dials"`
	Calm     int64          `json:"enhance_your_calm"`
	Expected bool           `json:"expected"`
}

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "otlpcall: "+format+"\n", a...)
	os.Exit(2)
}

func main() {
	target := flag.String("url", "", "https://HOST:PORT of the proxy")
	caFile := flag.String("ca", "", "PEM file of the CA that signed the server's certificate")
	certFile := flag.String("cert", "", "client certificate (PEM), for mTLS")
	keyFile := flag.String("key", "", "client key (PEM), for mTLS")
	serverName := flag.String("server-name", "", "TLS server name (default: the URL's host)")
	path := flag.String("path", "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
		"gRPC method path")
	calls := flag.Int("calls", 1, "calls per round")
	rounds := flag.Int("rounds", 1, "rounds of --calls calls, all over the same ClientConn")
	pause := flag.Duration("pause", 0, "idle time between rounds")
	startDelay := flag.Duration("start-delay", 0,
		"idle time before the first round (grpc-go connects at once)")
	concurrency := flag.Int("concurrency", 1, "calls in flight at once")
	sizes := flag.String("message-size", "0", "request bytes; a comma list is used in turn")
	maxRecv := flag.Int("max-recv", 64<<20, "largest response message accepted")
	timeout := flag.Duration("timeout", 30*time.Second, "deadline of each call")
	idPrefix := flag.String("id-prefix", "", "send x-request-id PREFIX-ROUND-CALL when set")
	keepaliveTime := flag.Duration("keepalive-time", 0,
		"keepalive.ClientParameters.Time (0: off; grpc-go raises anything below 10s to 10s)")
	keepaliveTimeout := flag.Duration("keepalive-timeout", 5*time.Second,
		"keepalive.ClientParameters.Timeout")
	permit := flag.Bool("keepalive-permit-without-stream", false,
		"keepalive.ClientParameters.PermitWithoutStream")
	expect := flag.String("expect-code", "0", "accepted status codes, a comma list")
	var metadataFlags listFlag
	flag.Var(&metadataFlags, "metadata", "KEY=VALUE sent with every call (repeatable)")
	flag.Parse()

	u, err := url.Parse(*target)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		fail("--url must be https://HOST:PORT, got %q", *target)
	}
	var messageSizes []int
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n == 1 {
			fail("bad --message-size %q (0, or 2 bytes and more)", s)
		}
		messageSizes = append(messageSizes, n)
	}
	expected := map[int]bool{}
	for _, s := range strings.Split(*expect, ",") {
		n, err := strconv.Atoi(s)
		if err != nil {
			fail("bad --expect-code %q", s)
		}
		expected[n] = true
	}
	var pairs []string
	for _, m := range metadataFlags {
		kv := strings.SplitN(m, "=", 2)
		if len(kv) != 2 {
			fail("bad --metadata %q (KEY=VALUE)", m)
		}
		pairs = append(pairs, strings.ToLower(kv[0]), kv[1])
	}

	tlsConfig := &tls.Config{ServerName: *serverName}
	if tlsConfig.ServerName == "" {
		tlsConfig.ServerName = u.Hostname()
	}
	if *caFile != "" {
		pem, err := ioutil.ReadFile(*caFile)
		if err != nil {
			fail("%v", err)
		}
		tlsConfig.RootCAs = x509.NewCertPool()
		if !tlsConfig.RootCAs.AppendCertsFromPEM(pem) {
			fail("no certificate in %s", *caFile)
		}
	}
	if *certFile != "" {
		pair, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			fail("%v", err)
		}
		tlsConfig.Certificates = []tls.Certificate{pair}
	}

	logs := &logCounter{}
	grpclog.SetLoggerV2(logs)
	var dials int64
	dialer := func(ctx context.Context, addr string) (net.Conn, error) {
		atomic.AddInt64(&dials, 1)
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	options := []grpc.DialOption{
		grpc.WithTransportCredentials(credentials.NewTLS(tlsConfig)),
		grpc.WithContextDialer(dialer),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{}), grpc.MaxCallRecvMsgSize(*maxRecv)),
	}
	if *keepaliveTime > 0 {
		options = append(options, grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time: *keepaliveTime, Timeout: *keepaliveTimeout, PermitWithoutStream: *permit}))
	}
	conn, err := grpc.Dial(u.Host, options...)
	if err != nil {
		fail("dial %s: %v", u.Host, err)
	}
	defer conn.Close()

	var out sync.Mutex
	encoder := json.NewEncoder(os.Stdout)
	codes := map[string]int{}
	allExpected := true
	call := func(round, i int) {
		size := messageSizes[i%len(messageSizes)]
		request := exportRequest(size)
		md := metadata.Pairs(pairs...)
		r := callResult{Call: i, Round: round, RequestBytes: size, Trailers: map[string]string{}}
		if *idPrefix != "" {
			r.ID = fmt.Sprintf("%s-%d-%d", *idPrefix, round, i)
			md.Set("x-request-id", r.ID)
		}
		ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(context.Background(), md),
			*timeout)
		defer cancel()
		var response []byte
		var trailer metadata.MD
		start := time.Now()
		err := conn.Invoke(ctx, *path, &request, &response, grpc.Trailer(&trailer))
		r.Millis = time.Since(start).Milliseconds()
		st := status.Convert(err)
		r.Code, r.CodeName, r.Message = int(st.Code()), st.Code().String(), st.Message()
		r.ResponseBytes = len(response)
		for k, v := range trailer {
			r.Trailers[k] = strings.Join(v, ",")
		}
		out.Lock()
		defer out.Unlock()
		codes[strconv.Itoa(r.Code)]++
		if !expected[r.Code] {
			allExpected = false
		}
		if err := encoder.Encode(r); err != nil {
			fail("stdout: %v", err)
		}
	}

	for round := 0; round < *rounds; round++ {
		if round == 0 {
			time.Sleep(*startDelay)
		} else {
			time.Sleep(*pause)
		}
		next := int64(-1)
		var wg sync.WaitGroup
		for w := 0; w < *concurrency; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int(atomic.AddInt64(&next, 1)); i < *calls; i = int(atomic.AddInt64(&next, 1)) {
					call(round, i)
				}
			}()
		}
		wg.Wait()
	}
	s := summary{Summary: true, Calls: *calls * *rounds, Codes: codes,
		Dials: atomic.LoadInt64(&dials), Calm: atomic.LoadInt64(&logs.calm), Expected: allExpected}
	if err := encoder.Encode(s); err != nil {
		fail("stdout: %v", err)
	}
	if !allExpected {
		os.Exit(1)
	}
}
