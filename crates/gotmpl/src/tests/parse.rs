//! Parse errors and lexical corner cases; expectations from Go 1.19 via `oracle/regen.py`.

use super::{check, finish};

#[test]
#[rustfmt::skip]
#[allow(clippy::too_many_lines)]
fn corpus() {
    // BEGIN CORPUS parse
    check("{{foo}}", "{}",
        r#"ERROR: template: :1: function "foo" not defined"#);
    check("{{if .A}}x", "{}",
        "ERROR: template: :1: unexpected EOF");
    check("{{.A", "{}",
        "ERROR: template: :1: unclosed action");
    check("x{{end}}", "{}",
        "ERROR: template: :1: unexpected {{end}}");
    check("{{else}}", "{}",
        "ERROR: template: :1: unexpected {{else}}");
    check("{{if}}{{end}}", "{}",
        "ERROR: template: :1: missing value for if");
    check("{{}}", "{}",
        "ERROR: template: :1: missing value for command");
    check("{{$x}}", "{}",
        r#"ERROR: template: :1: undefined variable "$x""#);
    check("{{break}}", "{}",
        "ERROR: template: :1: {{break}} outside {{range}}");
    check("{{continue}}", "{}",
        "ERROR: template: :1: {{continue}} outside {{range}}");
    check("{{range .}}{{else}}{{break}}{{end}}", "{}",
        "ERROR: template: :1: {{break}} outside {{range}}");
    check("{{range .}}{{break 1}}{{end}}", "{}",
        r#"ERROR: template: :1: unexpected "1" in {{break}}"#);
    check(r#"{{.A | "x"}}"#, "{}",
        "ERROR: template: :1: non executable command in pipeline stage 2");
    check("{{.A | }}", "{}",
        r#"ERROR: template: :1:2: executing "" at <.A>: map has no entry for key "A""#);
    check(r#"{{"abc}}"#, "{}",
        "ERROR: template: :1: unterminated quoted string");
    check("{{`abc}}", "{}",
        "ERROR: template: :1: unterminated raw quoted string");
    check("{{/* x }}", "{}",
        "ERROR: template: :1: unclosed comment");
    check("{{/* x */ .A}}", "{}",
        "ERROR: template: :1: comment ends before closing delimiter");
    check("{{(.A}}", "{}",
        "ERROR: template: :1: unclosed left paren");
    check("{{.A)}}", "{}",
        r#"ERROR: template: :1: unexpected ")" in command"#);
    check("{{#}}", "{}",
        "ERROR: template: :1: unexpected \"#\" in command");
    check("{{3x}}", "{}",
        r#"ERROR: template: :1: bad number syntax: "3x""#);
    check(r#"{{"x".A}}"#, "{}",
        r#"ERROR: template: :1: unexpected . after term "\"x\"""#);
    check("{{1+2}}", "{}",
        r#"ERROR: template: :1: bad number syntax: "1+2""#);
    check(r#"{{"\q"}}"#, "{}",
        "ERROR: template: :1: invalid syntax");
    check("{{range .}}{{else if .A}}{{end}}", "{}",
        "ERROR: template: :1: unexpected <if> in input");
    check("{{if .A}}{{else}}{{else}}{{end}}", "{}",
        "ERROR: template: :1: expected end; found {{else}}");
    check("{{range $i, $e, $f := .}}{{end}}", "{}",
        "ERROR: template: :1: too many declarations in range");
    check("{{with $x, $y := .}}{{end}}", "{}",
        "ERROR: template: :1: too many declarations in with");
    check("{{range $i, 3}}{{end}}", "{}",
        "ERROR: template: :1: range can only initialize variables");
    check("{{.A\n\n", "{}",
        "ERROR: template: :3: unclosed action started at :1");
    check("x\n{{foo}}", "{}",
        r#"ERROR: template: :2: function "foo" not defined"#);
    check("{{'ab'}}", "{}",
        "ERROR: template: :1: malformed character constant: 'ab'");
    check("{{99999999999999999999}}", "{}",
        r#"ERROR: template: :1: integer overflow: "99999999999999999999""#);
    check("{{if $x := 1}}{{end}}{{$x}}", "{}",
        r#"ERROR: template: :1: undefined variable "$x""#);
    check("{{.A.}}", "{}",
        "ERROR: template: :1: unexpected <.> in operand");
    check("{{.A b}}", "{}",
        r#"ERROR: template: :1: function "b" not defined"#);
    check("{{if .A}}{{end}}{{end}}", "{}",
        "ERROR: template: :1: unexpected {{end}}");
    // define/template/block are not supported
    // Deviation; Go gives: ""
    check(r#"{{define "x"}}y{{end}}"#, "{}",
        "ERROR: template: :1: {{define}} is not supported");
    // define/template/block are not supported
    // Deviation; Go gives: r#"ERROR: template: :1:11: executing "" at <{{template "x"}}>: template "x" not defined"#
    check(r#"{{template "x"}}"#, "{}",
        "ERROR: template: :1: {{template}} is not supported");
    // define/template/block are not supported
    // Deviation; Go gives: "y"
    check(r#"{{block "x" .}}y{{end}}"#, "{}",
        "ERROR: template: :1: {{block}} is not supported");
    check("{{1.2.3}}", "{}",
        r#"ERROR: template: :1: unexpected ".3" in operand"#);
    check("{{with .A}}{{else if .B}}{{end}}", "{}",
        "ERROR: template: :1: unexpected <if> in input");
    check("{{$x := 1}}{{$x := 2}}{{$x}}", "{}",
        "2");
    check("{{ .A -}}x{{- .B }}", r#"{"A":1,"B":2}"#,
        "1x2");
    check("{{-3}}{{- 3}}", "{}",
        "-33");
    check("{{.A|print}}", r#"{"A":1}"#,
        "1");
    check("{{print\t.A\r\n}}", r#"{"A":1}"#,
        "1");
    check("{{$x:=1}}{{$x}}", "{}",
        "1");
    check("{{range $i,$e:=.}}{{$i}}{{$e}}{{end}}", r#"["z"]"#,
        "0z");
    // END CORPUS parse
    finish();
}
