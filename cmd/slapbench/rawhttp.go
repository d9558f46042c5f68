package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// rawConn is the load phases' HTTP/1.1 client: one keep-alive connection,
// requests written as prepared bytes, answers read by their Content-Length.
// net/http's client costs about as much CPU per call as a cached answer
// costs the master, on the same two cores: measuring the master with it
// would measure the client as much. The same client drives every engine;
// a connection the server closes (HTTP/1.0, `Connection: close`) is opened
// again for the next call.
type rawConn struct {
	addr string // host:port
	c    net.Conn
	r    *bufio.Reader
}

// rawRequest formats a call as it goes on the wire, with the headers
// slapos.slap's requests session sends.
func rawRequest(host string, cl call) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s /%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: slapos.core/1.24.0\r\nAccept: */*\r\n", cl.method, cl.path, host)
	if cl.body != nil {
		fmt.Fprintf(&b, "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n", len(cl.body))
	}
	b.WriteString("\r\n")
	b.Write(cl.body)
	return b.Bytes()
}

func (rc *rawConn) close() {
	if rc.c != nil {
		rc.c.Close()
		rc.c, rc.r = nil, nil
	}
}

// do sends one prepared request and returns the answer's body.
func (rc *rawConn) do(req []byte) ([]byte, error) {
	if rc.c == nil {
		c, err := net.DialTimeout("tcp", rc.addr, 10*time.Second)
		if err != nil {
			return nil, err
		}
		rc.c, rc.r = c, bufio.NewReaderSize(c, 64<<10)
	}
	rc.c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := rc.c.Write(req); err != nil {
		rc.close()
		return nil, err
	}
	status, err := rc.r.ReadString('\n')
	if err != nil {
		rc.close()
		return nil, err
	}
	f := strings.Fields(status)
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/1.") {
		rc.close()
		return nil, fmt.Errorf("not an HTTP answer: %q", status)
	}
	code, _ := strconv.Atoi(f[1])
	keep := f[0] == "HTTP/1.1"
	length := -1
	for {
		line, err := rc.r.ReadString('\n')
		if err != nil {
			rc.close()
			return nil, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		switch strings.ToLower(k) {
		case "content-length":
			length, _ = strconv.Atoi(v)
		case "connection":
			keep = strings.EqualFold(v, "keep-alive") || (keep && !strings.EqualFold(v, "close"))
		case "transfer-encoding":
			rc.close()
			return nil, fmt.Errorf("answer with Transfer-Encoding %s: not supported by the benchmark's client", v)
		}
	}
	var body []byte
	if length >= 0 {
		body = make([]byte, length)
		if _, err := io.ReadFull(rc.r, body); err != nil {
			rc.close()
			return nil, err
		}
	} else {
		// No length: the body ends with the connection.
		body, err = io.ReadAll(rc.r)
		keep = false
		if err != nil {
			rc.close()
			return nil, err
		}
	}
	if !keep {
		rc.close()
	}
	if code != 200 {
		return nil, fmt.Errorf("answered %d: %.300s", code, body)
	}
	return body, nil
}
