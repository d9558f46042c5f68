package profile

import (
	"bytes"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

const (
	// splitBytes is the least size of the pieces parseConfig parses alone:
	// a few parts, a few hundred tokens. (Sizes from 400 B to 4 KB
	// allocate 48-60 MB for the converted 1000-part profile, depending on
	// where its token slices end among the allocator's size classes.)
	splitBytes = 1500
	// parallelPieces is how many pieces make a file worth parsing on more
	// than one core (64 pieces: ~100 KB; the helloweb profiles have one).
	parallelPieces = 64
)

// parseConfig parses a profile file with hclsyntax and records it in
// parser. A file the nesting scan could cut between top-level items
// (cuts: offsets just after a newline that ends a top-level item) is
// parsed piece by piece, each piece from its own position in the file,
// and the pieces' bodies are joined: the same syntax tree, ranges
// included, as parsing it whole. hclsyntax lexes a file into one slice of
// tokens grown by appending (~100 bytes a token, 95,000 tokens for the
// benchmark's 300 KB profile): pieces keep each slice small, and a large
// file's pieces are parsed on every core while nothing else runs yet.
//
// A piece that does not parse cleanly, or an attribute set by two
// pieces, makes it parse the whole file again: its diagnostics are
// exactly those of the whole file.
//
// cores bounds the cores it parses on (0: GOMAXPROCS).
func parseConfig(parser *hclparse.Parser, src []byte, filename string, cuts []int, cores int) (*hcl.File, hcl.Diagnostics) {
	if f := parseSplit(src, filename, cuts, cores); f != nil {
		parser.AddFile(filename, f)
		return f, nil
	}
	return parser.ParseHCL(src, filename)
}

type piece struct {
	from, to int
	pos      hcl.Pos
	file     *hcl.File
	body     *hclsyntax.Body
	bad      bool
}

func (pc *piece) parse(src []byte, filename string) {
	defer func() {
		// A panic of the parser on another goroutine would end the
		// process: the whole file is parsed again on the caller's, where
		// it panics as it did before the file was parsed in pieces (the
		// master's handlers recover).
		if recover() != nil {
			pc.bad = true
		}
	}()
	f, diags := hclsyntax.ParseConfig(src[pc.from:pc.to], filename, pc.pos)
	b, ok := f.Body.(*hclsyntax.Body)
	pc.file, pc.body, pc.bad = f, b, len(diags) > 0 || !ok
}

// parseSplit returns nil when the file is not cut or a piece needs the
// whole file's diagnostics.
func parseSplit(src []byte, filename string, cuts []int, cores int) *hcl.File {
	if len(cuts) > 0 && cuts[len(cuts)-1] >= len(src) {
		cuts = cuts[:len(cuts)-1]
	}
	if len(cuts) == 0 || bytes.HasPrefix(src, []byte("\xef\xbb\xbf")) {
		return nil
	}
	pieces := make([]piece, len(cuts)+1)
	pos := hcl.InitialPos
	from := 0
	for i := range pieces {
		to := len(src)
		if i < len(cuts) {
			to = cuts[i]
		}
		pieces[i] = piece{from: from, to: to, pos: pos}
		// A piece starts after a newline: hclsyntax counts a line for
		// each \n (alone or in \r\n) and starts it at column 1.
		pos = hcl.Pos{Line: pos.Line + bytes.Count(src[from:to], []byte("\n")), Column: 1, Byte: to}
		from = to
	}
	if cores <= 0 || cores > runtime.GOMAXPROCS(0) {
		cores = runtime.GOMAXPROCS(0)
	}
	workers := min(cores, len(pieces)/parallelPieces+1)
	if workers <= 1 {
		for i := range pieces {
			if pieces[i].parse(src, filename); pieces[i].bad {
				return nil
			}
		}
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= len(pieces) {
						return
					}
					pieces[i].parse(src, filename)
				}
			})
		}
		wg.Wait()
	}
	body := pieces[0].body
	for i := range pieces {
		pc := &pieces[i]
		if pc.bad {
			return nil
		}
		if i == 0 {
			continue
		}
		for name, a := range pc.body.Attributes {
			if body.Attributes[name] != nil {
				return nil // "Attribute redefined", reported by the whole parse
			}
			body.Attributes[name] = a
		}
		body.Blocks = append(body.Blocks, pc.body.Blocks...)
	}
	// The first piece's file is the whole file's: its navigation
	// (hcl.File.Nav) holds the body the other pieces were joined into.
	last := pieces[len(pieces)-1].body
	body.SrcRange = hcl.RangeBetween(body.SrcRange, last.SrcRange)
	body.EndRange = last.EndRange
	f := pieces[0].file
	f.Bytes = src
	return f
}
