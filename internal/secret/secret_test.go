package secret

import (
	"strings"
	"testing"
)

// Redact and Scrub hide passwords in every form a driver or the SDK may
// print them, and leave the rest of the text readable.
func TestScrub(t *testing.T) {
	known := Forms([]string{`a"b\c-9x`, "WhAwsSecret/Key+123"})
	cases := []struct{ in, want, secret string }{
		{"dial postgres://wharf:p@ss@h:5432/db failed", "dial postgres://wharf:xxxxx@h:5432/db failed", "ss"},
		{"postgres://wharf:pa%2Fss@h/db?sslmode=verify-full", "postgres://wharf:xxxxx@h/db?sslmode=verify-full", "pa%2Fss"},
		{"host=h port=5 user=u password='my secret pw' dbname=d", "host=h port=5 user=u password=xxxxx dbname=d", "secret"},
		{`host=h password=pl\'ain dbname=d`, "host=h password=xxxxx dbname=d", "ain"},
		{"postgres://h/db?user=u&password=s3cr3t&sslmode=require", "postgres://h/db?user=u&password=xxxxx&sslmode=require", "s3cr3t"},
		{`{"Password":"s3\"cr3t","x":1}`, `{"Password":xxxxx,"x":1}`, "cr3t"},
		{"mongodb+srv://u:pw-mongo@cluster0.example.net/?retryWrites=true", "mongodb+srv://u:xxxxx@cluster0.example.net/?retryWrites=true", "pw-mongo"},
		{"aws_secret_access_key = abcDEF123", "aws_secret_access_key = xxxxx", "abcDEF"},
		{`{"error":"auth failed for a\"b\\c-9x"}`, `{"error":"auth failed for xxxxx"}`, `c-9x`},
		{"signing with WhAwsSecret%2FKey%2B123 failed", "signing with xxxxx failed", "Key"},
		{"no secret here: host=h port=5432", "no secret here: host=h port=5432", ""},
	}
	for _, c := range cases {
		got := Scrub(c.in, known)
		if got != c.want || c.secret != "" && strings.Contains(got, c.secret) {
			t.Errorf("Scrub(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := DSNPasswords("host=h password='Wh Kw Pw-3' user=u"); len(got) == 0 || got[0] != "Wh Kw Pw-3" {
		t.Errorf("keyword DSN password: %q", got)
	}
	if got := DSNPasswords("postgres://u:WhDsnPw-9f2%40k@h/db"); len(got) != 2 || got[1] != "WhDsnPw-9f2@k" {
		t.Errorf("URL DSN password: %q", got)
	}
}
