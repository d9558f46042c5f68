package master

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"strconv"

	"github.com/slapnode/slapnode/node/slap"
)

// maxForm bounds a request body: a formatted node with a thousand
// partitions is about 2 MB.
const maxForm = 32 << 20

// statusError is an error the client caused (or may retry): its status and
// message go out as they are.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &statusError{status: status, msg: fmt.Sprintf(format, args...)}
}

// notFoundMsg is Werkzeug's text for an unknown URL, which slapproxy (and
// so the client's initializeConnection probe of getHateoasUrl) shows.
const notFoundMsg = "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again."

// htmlError writes an error page as Flask/Werkzeug does, so that SlapOS's
// client reads the message out of its <p> the same way.
func htmlError(w http.ResponseWriter, status int, msg string) {
	body := "<!doctype html>\n<html lang=en>\n<title>" + strconv.Itoa(status) + " " + http.StatusText(status) +
		"</title>\n<h1>" + http.StatusText(status) + "</h1>\n<p>" + html.EscapeString(msg) + "</p>\n"
	writeBody(w, status, body)
}

func writeBody(w http.ResponseWriter, status int, body string) {
	writeBytes(w, status, []byte(body))
}

// The headers every SLAP answer carries, shared rather than allocated per
// answer (net/http only reads them).
var htmlContentType = []string{"text/html; charset=utf-8"}

func writeBytes(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = htmlContentType
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	w.Write(body)
}

// slapHandler is one SLAP endpoint: it returns the body of a 200, or an
// error.
type slapHandler func(r *http.Request) (string, error)

// slapBytesHandler is a slapHandler whose answer may be a cached one,
// written as it is.
type slapBytesHandler func(r *http.Request) ([]byte, error)

// serve runs h and maps its error: a statusError as is, anything else to a
// 500 whose details stay in the server's log.
func serve(h slapHandler) http.HandlerFunc {
	return serveBytes(func(r *http.Request) ([]byte, error) {
		s, err := h(r)
		return []byte(s), err
	})
}

func serveBytes(h slapBytesHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err != nil {
			formError(w, err)
			return
		}
		body, err := h(r)
		answer(w, r, body, err)
	}
}

// serveRaw is serveBytes for a handler that looks at the request's body as
// sent before parsing the form (requestComputerPartition keys its cache on
// it): the body is read whole, within maxForm, and r.Body reads the same
// bytes again for ParseForm.
func serveRaw(h func(r *http.Request, raw []byte) ([]byte, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxForm))
		if err != nil {
			formError(w, err)
			return
		}
		r.Body = http.MaxBytesReader(w, io.NopCloser(bytes.NewReader(raw)), maxForm)
		body, err := h(r, raw)
		answer(w, r, body, err)
	}
}

// parseForm is ParseForm for a serveRaw handler, its error a statusError.
func parseForm(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return errorf(http.StatusBadRequest, "unreadable form: %v", err)
	}
	return nil
}

func formError(w http.ResponseWriter, err error) {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		htmlError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", maxForm))
		return
	}
	htmlError(w, http.StatusBadRequest, "unreadable form: "+err.Error())
}

// answer writes a handler's answer, or maps its error: a statusError as
// is, anything else to a 500 whose details stay in the server's log.
func answer(w http.ResponseWriter, r *http.Request, body []byte, err error) {
	if err != nil {
		var se *statusError
		if errors.As(err, &se) {
			htmlError(w, se.status, se.msg)
			return
		}
		requestLogger(r).Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		htmlError(w, http.StatusInternalServerError, "The master could not complete the request: "+err.Error())
		return
	}
	writeBytes(w, http.StatusOK, body)
}

// route registers a SLAP endpoint for one method (GET also answers HEAD,
// as Flask does); other methods get Werkzeug's 405.
func route(mux *http.ServeMux, method, path string, h slapHandler) {
	routeBytes(mux, method, path, serve(h))
}

func routeBytes(mux *http.ServeMux, method, path string, f http.HandlerFunc) {
	mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
			allow := method
			if method == http.MethodGet {
				allow = "GET, HEAD, OPTIONS"
			}
			w.Header().Set("Allow", allow)
			htmlError(w, http.StatusMethodNotAllowed, "The method is not allowed for the requested URL.")
			return
		}
		f(w, r)
	})
}

// field returns a required form field.
func field(r *http.Request, name string) (string, error) {
	if _, ok := r.Form[name]; !ok {
		return "", errorf(http.StatusBadRequest, "missing field %q in %s", name, r.URL.Path)
	}
	return r.Form.Get(name), nil
}

// optional returns a form field, "" for missing or Python's None.
func optional(r *http.Request, name string) string {
	v := r.Form.Get(name)
	if v == "None" {
		return ""
	}
	return v
}

// marshalled decodes a marshalled form field; missing means def.
func marshalled(r *http.Request, name string, def any) (any, error) {
	s, ok := r.Form[name]
	if !ok || len(s) == 0 || s[0] == "" {
		return def, nil
	}
	v, err := slap.Unmarshal([]byte(s[0]))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "field %q: %v", name, err)
	}
	return v, nil
}

func marshalledDict(r *http.Request, name string) (map[string]any, error) {
	v, err := marshalled(r, name, map[string]any{})
	if err != nil {
		return nil, err
	}
	if v == nil {
		return map[string]any{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errorf(http.StatusBadRequest, "field %q: expected a marshalled dictionary, got %T", name, v)
	}
	return m, nil
}

// marshal is dumps for an answer written as it is.
func marshal(v any) ([]byte, error) {
	b, err := slap.Marshal(v)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "%v", err)
	}
	return b, nil
}

func dumps(v any) (string, error) {
	b, err := slap.Marshal(v)
	if err != nil {
		return "", errorf(http.StatusBadRequest, "%v", err)
	}
	return string(b), nil
}
