package instance

import (
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/slapnode/slapnode/recipes-wasm/cookbook/internal/fsx"
	recipe "github.com/slapnode/slapnode/recipes-wasm/sdk/go"
)

// The certificate authority of slapos.cookbook: certificate_authority
// writes the CA's openssl configuration and a service that makes the CA
// (key and self-signed certificate) and signs, every minute, the
// certificates requested in its requests directory;
// certificate_authority.request files such a request (or installs a given
// key and certificate) and links key-file and cert-file to where the CA
// writes them. openssl runs in the partition's service, as in SlapOS; the
// recipe itself runs it only to check a given key and certificate.
func registerCA(g *recipe.Registry) {
	g.Register("certificate-authority", recipe.Recipe{
		Description: "A certificate authority signing the partition's certificate requests (slapos.cookbook:certificate_authority).",
		Schema: `{"type":"object","required":["ca-dir","requests-directory","ca-private","wrapper","openssl-binary"],"properties":{
			"ca-dir":{"type":"string","description":"the CA's directory (index.txt, serial, openssl.cnf, cacert.pem)"},
			"requests-directory":{"type":"string","description":"where requests are filed (certificate-authority-request)"},
			"ca-private":{"type":"string","description":"where the CA's key (cakey.pem) is kept"},
			"ca-certs":{"type":"string"},"ca-newcerts":{"type":"string"},"ca-crl":{"type":"string"},
			"wrapper":{"type":"string","description":"the CA service to write (run it from etc/service)"},
			"openssl-binary":{"type":"string","description":"the openssl the service runs"},
			"country-code":{"type":"string","description":"default XX"},
			"email":{"type":"string","description":"default xx@example.com"},
			"state":{"type":"string","description":"default ('State',), as SlapOS's existing CAs have it"},
			"city":{"type":"string","description":"default City"},
			"company":{"type":"string","description":"default Company"}
		}}`,
		Outputs: []string{"location", "wrapper"},
		Install: certificateAuthority,
	})
	g.Register("certificate-authority-request", recipe.Recipe{
		Description: "A certificate requested from the partition's certificate authority (slapos.cookbook:certificate_authority.request).",
		Schema: `{"type":"object","required":["requests-directory","ca-private","ca-certs","key-file","cert-file"],"properties":{
			"name":{"type":"string","description":"the certificate's common name (default the part's name)"},
			"requests-directory":{"type":"string"},"ca-private":{"type":"string"},"ca-certs":{"type":"string"},
			"key-file":{"type":"string","description":"a link to the key, made here"},
			"cert-file":{"type":"string","description":"a link to the certificate, made here"},
			"key-content":{"type":"string","description":"with cert-content: this key and certificate instead of a request"},
			"cert-content":{"type":"string"},
			"openssl-binary":{"type":"string","description":"checks key-content and cert-content (default openssl, granted)"},
			"executable":{"type":"string","description":"what wrapper starts once the certificate is there"},
			"wrapper":{"type":"string","description":"a launcher of executable waiting for the key and certificate"}
		}}`,
		Outputs: []string{"location", "key-file", "cert-file"},
		Install: certificateRequest,
	})
}

func caOption(opts recipe.Options, key, def string) string {
	v, err := opts.StringOr(key, def)
	if err != nil {
		return def
	}
	return v
}

func certificateAuthority(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	var dir, requests, private, wrapper, openssl string
	for k, p := range map[string]*string{"ca-dir": &dir, "requests-directory": &requests, "ca-private": &private, "wrapper": &wrapper, "openssl-binary": &openssl} {
		v, err := opts.String(k)
		if err != nil {
			return recipe.Result{}, err
		}
		*p = strings.TrimSpace(v)
	}
	dir, requests, private, wrapper = fsx.Resolve(ctx, dir), fsx.Resolve(ctx, requests), fsx.Resolve(ctx, private), fsx.Resolve(ctx, wrapper)
	if err := fsx.MkdirAll(ctx, dir); err != nil {
		return recipe.Result{}, err
	}
	// The CA's database: written once, then the CA's.
	for name, content := range map[string]string{"crlnumber": "01", "serial": "01", "index.txt": ""} {
		p := filepath.Join(dir, name)
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		if err := fsx.WriteFile(ctx, p, []byte(content), 0o600); err != nil {
			return recipe.Result{}, err
		}
	}
	config := filepath.Join(dir, "openssl.cnf")
	if err := fsx.WriteFile(ctx, config, []byte(opensslConfig(dir)), 0o600); err != nil {
		return recipe.Result{}, err
	}
	subject := map[string]string{
		"C": caOption(opts, "country-code", "XX"), "ST": caOption(opts, "state", "('State',)"),
		"L": caOption(opts, "city", "City"), "O": caOption(opts, "company", "Company"),
		"emailAddress": caOption(opts, "email", "xx@example.com"),
	}
	script := caService(openssl, config, filepath.Join(private, "cakey.pem"), filepath.Join(dir, "cacert.pem"), requests, subject)
	if err := fsx.WriteFile(ctx, wrapper, []byte(script), 0o755); err != nil {
		return recipe.Result{}, err
	}
	return recipe.Result{Outputs: map[string]any{"location": wrapper, "wrapper": wrapper}, Installed: []string{wrapper}}, nil
}

// opensslConfig is the CA's configuration: its files under dir, the
// policy of the requests it signs (same country, state and organisation
// as the CA's), the extensions of what it signs and of itself.
func opensslConfig(dir string) string {
	return `# Written by slapnode's cookbook (slapos.cookbook:certificate_authority).
HOME = .

[ ca ]
default_ca = CA_default

[ CA_default ]
dir = ` + dir + `
certs = $dir/certs
crl_dir = $dir/crl
database = $dir/index.txt
unique_subject = no
new_certs_dir = $dir/newcerts
certificate = $dir/cacert.pem
serial = $dir/serial
crlnumber = $dir/crlnumber
crl = $dir/crl.pem
private_key = $dir/private/cakey.pem
x509_extensions = usr_cert
name_opt = ca_default
cert_opt = ca_default
default_days = 3650
default_crl_days = 30
default_md = default
preserve = no
policy = policy_match

[ policy_match ]
countryName = match
stateOrProvinceName = match
organizationName = match
organizationalUnitName = optional
commonName = supplied
emailAddress = optional

[ req ]
default_bits = 2048
distinguished_name = req_distinguished_name
x509_extensions = v3_ca
string_mask = utf8only

[ req_distinguished_name ]

[ usr_cert ]
basicConstraints = CA:FALSE
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer

[ v3_ca ]
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always,issuer
basicConstraints = CA:true
`
}

// caService is the CA's service: it makes the CA when its key or
// certificate is missing, then signs every request whose key or
// certificate is missing, every minute.
func caService(openssl, config, key, cert, requests string, subject map[string]string) string {
	q := fsx.ShellQuote
	return `#!/bin/sh
# Written by slapnode's cookbook (slapos.cookbook:certificate_authority):
# the certificate authority of the partition, signing the requests filed in
# ` + requests + ` every minute.
openssl=` + q(openssl) + `
config=` + q(config) + `
key=` + q(key) + `
cert=` + q(cert) + `
requests=` + q(requests) + `
# A subject: the CA's fields with the common name $1 (/ escaped).
subject() {
	printf '/C=%s/ST=%s/L=%s/O=%s/CN=%s/emailAddress=%s' ` +
		strings.Join([]string{q(escapeSubject(subject["C"])), q(escapeSubject(subject["ST"])), q(escapeSubject(subject["L"])), q(escapeSubject(subject["O"]))}, " ") +
		` "$(printf %s "$1" | sed 's,/,\\/,g')" ` + q(escapeSubject(subject["emailAddress"])) + `
}
while :; do
	if [ ! -e "$key" ] || [ ! -e "$cert" ]; then
		rm -f "$key" "$cert"
		"$openssl" req -utf8 -nodes -config "$config" -new -sha256 -x509 -extensions v3_ca \
			-keyout "$key" -out "$cert" -days 10950 \
			-subj "$(subject "Certificate Authority $(cat /proc/sys/kernel/random/uuid)")" || rm -f "$key" "$cert"
	fi
	for request in "$requests"/*; do
		[ -f "$request" ] || continue
		name=$(sed -n 's/^name = //p' "$request")
		k=$(sed -n 's/^key_file = //p' "$request")
		c=$(sed -n 's/^certificate_file = //p' "$request")
		[ -n "$k" ] && [ -n "$c" ] || continue
		[ -e "$k" ] && [ -e "$c" ] && continue
		rm -f "$k" "$c"
		if "$openssl" req -utf8 -config "$config" -nodes -new -sha256 -keyout "$k" -out "$c.csr" -days 3650 -subj "$(subject "$name")" &&
			"$openssl" ca -batch -config "$config" -out "$c" -infiles "$c.csr"; then
			echo "Created certificate '$name'"
		else
			rm -f "$k" "$c"
		fi
		rm -f "$c.csr"
	done
	sleep 60
done
`
}

func escapeSubject(s string) string { return strings.ReplaceAll(s, "/", `\/`) }

func certificateRequest(ctx recipe.Context, opts recipe.Options) (recipe.Result, error) {
	get := func(k string) (string, error) {
		v, err := opts.String(k)
		return strings.TrimSpace(v), err
	}
	var requests, private, certs, keyFile, certFile string
	for k, p := range map[string]*string{"requests-directory": &requests, "ca-private": &private, "ca-certs": &certs, "key-file": &keyFile, "cert-file": &certFile} {
		v, err := get(k)
		if err != nil {
			return recipe.Result{}, err
		}
		*p = fsx.Resolve(ctx, v)
	}
	name := caOption(opts, "name", fsx.Unmangle(ctx.Part))
	sum := sha512.Sum512([]byte(name))
	hash := hex.EncodeToString(sum[:])
	key := filepath.Join(private, hash+".key")
	cert := filepath.Join(certs, hash+".crt")
	keyContent, certContent := caOption(opts, "key-content", ""), caOption(opts, "cert-content", "")
	requestNeeded := true
	if keyContent != "" && certContent != "" {
		if err := checkKeyPair(ctx, caOption(opts, "openssl-binary", "openssl"), keyContent, certContent); err != nil {
			return recipe.Result{}, err
		}
		if err := fsx.WriteFile(ctx, key, []byte(keyContent), 0o600); err != nil {
			return recipe.Result{}, err
		}
		if err := fsx.WriteFile(ctx, cert, []byte(certContent), 0o644); err != nil {
			return recipe.Result{}, err
		}
		requestNeeded = false
	} else {
		req := fmt.Sprintf("[certificate]\nname = %s\nkey_file = %s\ncertificate_file = %s\n\n", name, key, cert)
		if err := fsx.WriteFile(ctx, filepath.Join(requests, hash), []byte(req), 0o644); err != nil {
			return recipe.Result{}, err
		}
	}
	for link, target := range map[string]string{keyFile: key, certFile: cert} {
		if st, err := os.Lstat(link); err == nil {
			if st.Mode()&os.ModeSymlink == 0 {
				return recipe.Result{}, fmt.Errorf("%q file should be a symbolic link", link)
			}
			if err := os.Remove(link); err != nil {
				return recipe.Result{}, err
			}
		}
		if err := fsx.MkdirAll(ctx, filepath.Dir(link)); err != nil {
			return recipe.Result{}, err
		}
		rel, err := filepath.Rel(filepath.Dir(link), target)
		if err != nil {
			return recipe.Result{}, err
		}
		// Relative: the sandbox makes no absolute links (docs/recipes.md).
		if err := os.Symlink(rel, link); err != nil {
			return recipe.Result{}, fmt.Errorf("linking %s to %s: %w", link, target, err)
		}
	}
	installed := []string{keyFile, certFile}
	if requestNeeded && opts.Has("wrapper") && opts.Has("executable") {
		exe, err := get("executable")
		if err != nil {
			return recipe.Result{}, err
		}
		wrapper, err := get("wrapper")
		if err != nil {
			return recipe.Result{}, err
		}
		wrapper = fsx.Resolve(ctx, wrapper)
		script := fmt.Sprintf("#!/bin/sh\n# Written by slapnode's cookbook (slapos.cookbook:certificate_authority.request):\n# %s once the certificate authority has signed %s.\nwhile [ ! -e %s ] || [ ! -e %s ]; do sleep 0.5; done\nexec %s \"$@\"\n",
			exe, name, fsx.ShellQuote(cert), fsx.ShellQuote(key), fsx.ShellQuote(exe))
		if err := fsx.WriteFile(ctx, wrapper, []byte(script), 0o755); err != nil {
			return recipe.Result{}, err
		}
		installed = append(installed, wrapper)
	}
	return recipe.Result{Outputs: map[string]any{"location": keyFile, "key-file": keyFile, "cert-file": certFile}, Installed: installed}, nil
}

// checkKeyPair checks, with openssl (granted), that a key and a
// certificate read and belong together (the same modulus).
func checkKeyPair(ctx recipe.Context, openssl, key, cert string) error {
	dir := filepath.Join(ctx.Dir(), ".slapnode-ca-check-"+ctx.Part)
	if err := fsx.MkdirAll(ctx, dir); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	kf, cf := filepath.Join(dir, "key"), filepath.Join(dir, "cert")
	if err := fsx.WriteFile(ctx, kf, []byte(key), 0o600); err != nil {
		return err
	}
	if err := fsx.WriteFile(ctx, cf, []byte(cert), 0o600); err != nil {
		return err
	}
	argv := func(args ...string) []string {
		if strings.Contains(openssl, "/") {
			return append([]string{"sh", "-c", `exec "$0" "$@"`, openssl}, args...)
		}
		return append([]string{openssl}, args...)
	}
	run := func(args ...string) (string, error) {
		r, err := ctx.Run(argv(args...), dir, nil, time.Minute)
		if err != nil {
			if strings.Contains(err.Error(), "not granted") {
				err = fmt.Errorf("%w (checking key-content and cert-content runs openssl: grant it with allow_exec)", err)
			}
			return "", err
		}
		return r.Output, nil
	}
	if _, err := run("x509", "-noout", "-text", "-in", cf); err != nil {
		return fmt.Errorf("cert-content: %w", err)
	}
	if _, err := run("rsa", "-noout", "-text", "-in", kf); err != nil {
		return fmt.Errorf("key-content: %w", err)
	}
	mc, err := run("x509", "-noout", "-modulus", "-in", cf)
	if err != nil {
		return err
	}
	mk, err := run("rsa", "-noout", "-modulus", "-in", kf)
	if err != nil {
		return err
	}
	if strings.TrimSpace(mc) != strings.TrimSpace(mk) {
		return errors.New("The key and certificate provided don't patch each other. Please check your parameters")
	}
	return nil
}
