package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"

	"github.com/wharfdata/wharf/internal/stacktest"
)

// tf is the parsed Terraform of deploy/terraform.
type tf struct {
	files  map[string]*hcl.File
	blocks []*hclsyntax.Block // every top-level block
}

func parseTerraform(t *testing.T) *tf {
	t.Helper()
	paths, _ := filepath.Glob("terraform/*.tf")
	vars, _ := filepath.Glob("terraform/*.tfvars")
	if len(paths) == 0 {
		t.Fatal("no .tf files under deploy/terraform")
	}
	p := hclparse.NewParser()
	out := &tf{files: map[string]*hcl.File{}}
	for _, path := range append(paths, vars...) {
		f, diags := p.ParseHCLFile(path)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", path, diags.Error())
		}
		out.files[path] = f
		if strings.HasSuffix(path, ".tf") {
			out.blocks = append(out.blocks, f.Body.(*hclsyntax.Body).Blocks...)
		}
	}
	return out
}

// block returns the top-level block of type and labels, or nil.
func (x *tf) block(typ string, labels ...string) *hclsyntax.Block {
	for _, b := range x.blocks {
		if b.Type == typ && slices.Equal(b.Labels, labels) {
			return b
		}
	}
	return nil
}

// src returns the source text of a range.
func (x *tf) src(r hcl.Range) string {
	f := x.files[r.Filename]
	return string(f.Bytes[r.Start.Byte:r.End.Byte])
}

// Every .tf parses; every var., local. and resource reference names
// something declared; the resources issues 6 and 13 ask for exist (target
// tracking replaced the scale-out alarms); and
// `terraform fmt -check` passes when terraform (or tofu) is installed.
func TestTerraformParses(t *testing.T) {
	x := parseTerraform(t)

	declared := map[string]bool{}
	for _, b := range x.blocks {
		switch b.Type {
		case "variable":
			declared["var."+b.Labels[0]] = true
		case "locals":
			for name := range b.Body.Attributes {
				declared["local."+name] = true
			}
		case "resource":
			declared[b.Labels[0]+"."+b.Labels[1]] = true
		case "data":
			declared["data."+b.Labels[0]+"."+b.Labels[1]] = true
		}
	}
	for _, b := range x.blocks {
		hclsyntax.VisitAll(b.Body, func(n hclsyntax.Node) hcl.Diagnostics {
			e, ok := n.(hclsyntax.Expression)
			if !ok {
				return nil
			}
			for _, tr := range e.Variables() {
				root := tr.RootName()
				var ref string
				switch {
				case root == "var" || root == "local":
					ref = root + "." + tr[1].(hcl.TraverseAttr).Name
				case root == "data":
					ref = "data." + tr[1].(hcl.TraverseAttr).Name + "." + tr[2].(hcl.TraverseAttr).Name
				case strings.HasPrefix(root, "aws_"):
					ref = root + "." + tr[1].(hcl.TraverseAttr).Name
				default:
					continue // each.key, count.index, for-expression variables
				}
				if !declared[ref] {
					t.Errorf("%s: %s is not declared", tr.SourceRange(), ref)
				}
			}
			return nil
		})
	}

	for _, want := range [][]string{
		{"resource", "aws_sqs_queue", "main"},
		{"resource", "aws_sqs_queue", "dlq"},
		{"resource", "aws_sqs_queue_redrive_allow_policy", "dlq"},
		{"resource", "aws_s3_bucket", "data"},
		{"resource", "aws_s3_bucket_public_access_block", "data"},
		{"resource", "aws_s3_bucket_server_side_encryption_configuration", "data"},
		{"resource", "aws_s3_bucket_lifecycle_configuration", "data"},
		{"resource", "aws_iam_role", "task"},
		{"resource", "aws_iam_role", "redshift_copy"},
		{"resource", "aws_ecs_task_definition", "serve"},
		{"resource", "aws_ecs_task_definition", "backfill"},
		{"resource", "aws_ecs_service", "serve"},
		{"resource", "aws_appautoscaling_target", "serve"},
		{"resource", "aws_cloudwatch_log_group", "wharf"},
		{"resource", "aws_cloudwatch_metric_alarm", "dlq_depth"},
		{"resource", "aws_cloudwatch_metric_alarm", "oldest_message"},
		{"resource", "aws_cloudwatch_metric_alarm", "table_freshness"},
		{"resource", "aws_appautoscaling_policy", "backlog_per_task"},
		{"resource", "aws_cloudwatch_metric_alarm", "files_quarantined"},
		{"resource", "aws_cloudwatch_metric_alarm", "tasks_not_running"},
		{"resource", "aws_cloudwatch_metric_alarm", "memory"},
		{"resource", "aws_cloudwatch_metric_alarm", "raw_write_errors"},
		{"resource", "aws_cloudwatch_metric_alarm", "flush_failures"},
		{"resource", "aws_ecr_repository", "wharf"},
	} {
		if x.block(want[0], want[1:]...) == nil {
			t.Errorf("no %s %q", want[0], want[1:])
		}
	}

	// The queue redrives to the DLQ.
	if q := x.block("resource", "aws_sqs_queue", "main"); q != nil {
		if a := q.Body.Attributes["redrive_policy"]; a == nil || !strings.Contains(x.src(a.Expr.Range()), "aws_sqs_queue.dlq.arn") {
			t.Error("aws_sqs_queue.main has no redrive_policy to aws_sqs_queue.dlq")
		}
	}
	// Public access blocked, all four ways.
	if b := x.block("resource", "aws_s3_bucket_public_access_block", "data"); b != nil {
		for _, k := range []string{"block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"} {
			if a := b.Body.Attributes[k]; a == nil || x.src(a.Expr.Range()) != "true" {
				t.Errorf("public access block: %s is not true", k)
			}
		}
	}
	// Lifecycle rules for the files and the dead letters.
	if b := x.block("resource", "aws_s3_bucket_lifecycle_configuration", "data"); b != nil {
		text := x.src(b.Range())
		for _, want := range []string{`"${local.prefix}_deadletter/"`, "var.deadletter_retention_days", "var.parquet_retention_days"} {
			if !strings.Contains(text, want) {
				t.Errorf("lifecycle lacks %s", want)
			}
		}
	}
	// The service's container: stopTimeout from local.stop_timeout, a health
	// check that needs no shell.
	if b := x.block("resource", "aws_ecs_task_definition", "serve"); b != nil {
		text := x.src(b.Range())
		for _, want := range []string{"stopTimeout      = local.stop_timeout", `"CMD", "/wharf", "healthcheck"`, `user                   = "65532:65532"`} {
			if !strings.Contains(text, want) {
				t.Errorf("serve task definition lacks %q", want)
			}
		}
	}
	if b := x.block("resource", "aws_ecs_task_definition", "backfill"); b != nil && !strings.Contains(x.src(b.Range()), "aws_iam_role.backfill.arn") {
		t.Error("the backfill task definition does not use the backfill role")
	}

	fmtCheck(t)
}

// ECS's stopTimeout (local.stop_timeout) is above drain_timeout for every
// drain_timeout the variable's validation allows, and at most 120 s.
func TestStopTimeoutAboveDrain(t *testing.T) {
	x := parseTerraform(t)
	var expr hclsyntax.Expression
	for _, b := range x.blocks {
		if b.Type == "locals" {
			if a := b.Body.Attributes["stop_timeout"]; a != nil {
				expr = a.Expr
			}
		}
	}
	if expr == nil {
		t.Fatal("no local.stop_timeout")
	}
	for _, drain := range []int64{1, 25, 60, 105} {
		ctx := &hcl.EvalContext{
			Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{"drain_timeout_seconds": cty.NumberIntVal(drain)})},
			Functions: map[string]function.Function{"min": stdlib.MinFunc, "max": stdlib.MaxFunc},
		}
		v, diags := expr.Value(ctx)
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		stop, _ := v.AsBigFloat().Int64()
		if stop <= drain || stop > 120 {
			t.Errorf("drain_timeout %d s: stopTimeout %d s, want above it and at most 120", drain, stop)
		}
	}
}

func fmtCheck(t *testing.T) {
	for _, tool := range []string{"tofu", "terraform"} {
		path, err := exec.LookPath(tool)
		if err != nil {
			continue
		}
		c := exec.Command(path, "fmt", "-check", "-diff", "terraform")
		c.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE=/dev/null", "CHECKPOINT_DISABLE=1")
		var out bytes.Buffer
		c.Stdout, c.Stderr = &out, &out
		if err := c.Run(); err != nil {
			t.Errorf("%s fmt -check: %v\n%s", tool, err, out.String())
		}
		return
	}
	t.Log("neither tofu nor terraform is installed: fmt -check not run")
}

// iamActions maps each SDK operation wharf may call to the IAM actions it
// needs, the KMS ones included: the bucket is SSE-KMS, so a put needs a
// data key and a get a decrypt. An operation missing here fails the test.
var iamActions = map[string][]string{
	"sqs.ReceiveMessage":               {"sqs:ReceiveMessage"},
	"sqs.DeleteMessage":                {"sqs:DeleteMessage"},
	"sqs.DeleteMessageBatch":           {"sqs:DeleteMessage"},
	"sqs.ChangeMessageVisibility":      {"sqs:ChangeMessageVisibility"},
	"sqs.ChangeMessageVisibilityBatch": {"sqs:ChangeMessageVisibility"},
	"sqs.GetQueueAttributes":           {"sqs:GetQueueAttributes"},
	"sqs.SendMessage":                  {"sqs:SendMessage"},
	"sqs.SendMessageBatch":             {"sqs:SendMessage"},
	"s3.PutObject":                     {"s3:PutObject", "kms:GenerateDataKey"},
	"s3.GetObject":                     {"s3:GetObject", "kms:Decrypt"},
	"s3.HeadObject":                    {"s3:GetObject"},
	"s3.ListObjectsV2":                 {"s3:ListBucket"},
	"s3.DeleteObject":                  {"s3:DeleteObject"},
}

// operatorOnly are calls the wharf binary makes only in commands a person
// runs with their own credentials, never in serve or backfill: the task
// role must not grant them.
var operatorOnly = map[string]string{
	"internal/sqsbatch/sqsbatch.go sqs.SendMessageBatch": "wharf send, and wharf deadletter replay (re-sends dead letters to the queue; run with a producer's credentials)",
}

// sdkCall finds an SDK operation by its input type, as every call of the
// v2 SDK (and each paginator) takes one: &sqs.ReceiveMessageInput{…}.
var sdkCall = regexp.MustCompile(`\b(sqs|s3)\.(\w+)Input\b`)

// awsCalls scans the non-test Go files of every package of this module
// that the wharf binary is built from and returns the SDK operations they
// name, with the files naming each.
func awsCalls(t *testing.T) map[string][]string {
	t.Helper()
	root := stacktest.RepoRoot()
	c := exec.Command("go", "list", "-deps", "-f", `{{if .Module}}{{if eq .Module.Path "github.com/wharfdata/wharf"}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{end}}{{end}}`, "./cmd/wharf")
	c.Dir = root
	out, err := c.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	calls := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		for _, name := range f[1:] {
			path := filepath.Join(f[0], name)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(root, path)
			for _, m := range sdkCall.FindAllStringSubmatch(string(data), -1) {
				op := m[1] + "." + m[2]
				if !slices.Contains(calls[op], rel) {
					calls[op] = append(calls[op], rel)
				}
			}
		}
	}
	if len(calls) == 0 {
		t.Fatal("found no AWS call in the Go code: the scan is broken")
	}
	return calls
}

// statement is one statement of an aws_iam_policy_document.
type statement struct {
	sid       string
	allow     bool
	actions   []string
	resources []string // source text of each element
	condition string   // source text of the condition blocks
}

func (x *tf) policy(t *testing.T, name string) []statement {
	t.Helper()
	b := x.block("data", "aws_iam_policy_document", name)
	if b == nil {
		t.Fatalf("no data.aws_iam_policy_document.%s", name)
	}
	var out []statement
	for _, sb := range b.Body.Blocks {
		if sb.Type != "statement" {
			continue
		}
		s := statement{allow: true}
		if a := sb.Body.Attributes["sid"]; a != nil {
			v, _ := a.Expr.Value(nil)
			s.sid = v.AsString()
		}
		if a := sb.Body.Attributes["effect"]; a != nil {
			v, _ := a.Expr.Value(nil)
			s.allow = v.AsString() == "Allow"
		}
		if a := sb.Body.Attributes["actions"]; a != nil {
			v, diags := a.Expr.Value(nil)
			if diags.HasErrors() {
				t.Fatalf("%s: actions must be a literal list: %s", name, diags.Error())
			}
			for _, e := range v.AsValueSlice() {
				s.actions = append(s.actions, e.AsString())
			}
		}
		if a := sb.Body.Attributes["resources"]; a != nil {
			tup, ok := a.Expr.(*hclsyntax.TupleConsExpr)
			if !ok {
				t.Fatalf("%s %s: resources must be a list", name, s.sid)
			}
			for _, e := range tup.Exprs {
				s.resources = append(s.resources, x.src(e.Range()))
			}
		}
		for _, cb := range sb.Body.Blocks {
			if cb.Type == "condition" {
				s.condition += x.src(cb.Range())
			}
		}
		out = append(out, s)
	}
	return out
}

func allowed(sts []statement) []string {
	var out []string
	for _, s := range sts {
		if s.allow {
			for _, a := range s.actions {
				if !slices.Contains(out, a) {
					out = append(out, a)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// checkScope fails a statement whose resources are not exactly wharf's.
func checkScope(t *testing.T, role string, s statement) {
	t.Helper()
	for _, r := range s.resources {
		if strings.Contains(r, `"*"`) || r == `"*"` {
			t.Errorf("%s %s: resource %s is a wildcard", role, s.sid, r)
		}
	}
	for _, a := range s.actions {
		svc, _, _ := strings.Cut(a, ":")
		var want []string
		switch {
		case strings.Contains(a, "*"):
			t.Errorf("%s %s: action %s is a wildcard", role, s.sid, a)
		case svc == "sqs":
			want = []string{"aws_sqs_queue.main.arn"}
		case a == "s3:ListBucket":
			want = []string{"aws_s3_bucket.data.arn"}
			if !strings.Contains(s.condition, `"s3:prefix"`) || !strings.Contains(s.condition, `"${local.prefix}*"`) {
				t.Errorf("%s %s: s3:ListBucket without an s3:prefix condition on wharf's prefix", role, s.sid)
			}
		case a == "s3:DeleteObject":
			want = []string{`"${aws_s3_bucket.data.arn}/${local.prefix}_manifests/*"`}
		case svc == "s3":
			want = []string{`"${aws_s3_bucket.data.arn}/${local.prefix}*"`}
			if !s.allow {
				continue // a deny may be narrower
			}
		case svc == "kms":
			want = []string{"aws_kms_key.data.arn"}
			if !strings.Contains(s.condition, `"kms:ViaService"`) {
				t.Errorf("%s %s: KMS without a kms:ViaService condition", role, s.sid)
			}
		default:
			t.Errorf("%s %s: action %s of an unexpected service", role, s.sid, a)
			continue
		}
		if !slices.Equal(s.resources, want) {
			t.Errorf("%s %s: %s on %v, want exactly %v", role, s.sid, a, s.resources, want)
		}
	}
}

// TestTaskRoleMatchesCode lists the AWS calls the Go code of the wharf
// binary makes and compares them with the ECS task role: it must grant
// each call's IAM actions (and the KMS actions SSE-KMS needs), on exactly
// wharf's queue, bucket prefix and key, and nothing more. The backfill role
// grants a subset without SQS; the Redshift COPY role reads the prefix only.
func TestTaskRoleMatchesCode(t *testing.T) {
	calls := awsCalls(t)
	var need []string
	for op, files := range calls {
		var service []string
		for _, f := range files {
			if _, ok := operatorOnly[f+" "+op]; !ok {
				service = append(service, f)
			}
		}
		if len(service) == 0 {
			t.Logf("%-32s operator only (%s): not in the task role", op, strings.Join(files, ", "))
			continue
		}
		actions, ok := iamActions[op]
		if !ok {
			t.Errorf("%s (in %s) has no IAM mapping: add it to iamActions and to the task role", op, strings.Join(service, ", "))
			continue
		}
		t.Logf("%-32s → %-40s (%s)", op, strings.Join(actions, " "), strings.Join(service, ", "))
		for _, a := range actions {
			if !slices.Contains(need, a) {
				need = append(need, a)
			}
		}
	}
	sort.Strings(need)

	x := parseTerraform(t)
	task := x.policy(t, "task")
	granted := allowed(task)
	for _, a := range need {
		if !slices.Contains(granted, a) {
			t.Errorf("the task role does not grant %s, which the code needs", a)
		}
	}
	for _, a := range granted {
		if !slices.Contains(need, a) {
			t.Errorf("the task role grants %s, which the code never calls", a)
		}
	}
	for _, s := range task {
		checkScope(t, "task", s)
	}
	if b := x.block("resource", "aws_iam_role_policy", "task"); b == nil || !strings.Contains(x.src(b.Range()), "data.aws_iam_policy_document.task.json") {
		t.Error("the task role's policy is not data.aws_iam_policy_document.task")
	}

	backfill := x.policy(t, "backfill")
	for _, a := range allowed(backfill) {
		if strings.HasPrefix(a, "sqs:") || !slices.Contains(granted, a) {
			t.Errorf("the backfill role grants %s (only the task role's S3 and KMS actions belong there)", a)
		}
	}
	for _, s := range backfill {
		checkScope(t, "backfill", s)
	}

	copyRole := x.policy(t, "redshift_copy")
	if got, want := allowed(copyRole), []string{"kms:Decrypt", "s3:GetObject", "s3:ListBucket"}; !slices.Equal(got, want) {
		t.Errorf("the Redshift COPY role allows %v, want %v", got, want)
	}
	for _, s := range copyRole {
		checkScope(t, "redshift_copy", s)
	}
}
