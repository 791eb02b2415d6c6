//! Language corpus; expectations from Go 1.19 via `oracle/regen.py`.

use super::{PLUGIN, check, finish};

#[test]
#[rustfmt::skip]
#[allow(clippy::too_many_lines)]
fn corpus() {
    // BEGIN CORPUS exec
    check("{{.Name}}", PLUGIN,
        "vieux/sshfs:latest");
    check("{{.Id}}", PLUGIN,
        "5ae1c0f4b1e2c8d9a7f3e6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5");
    // alias ID -> Id (Docker's struct field is ID)
    // Deviation; Go gives: r#"ERROR: template: :1:2: executing "" at <.ID>: map has no entry for key "ID""#
    check("{{.ID}}", PLUGIN,
        "5ae1c0f4b1e2c8d9a7f3e6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5");
    check("{{range .Settings.Env}}{{.}} {{end}}", PLUGIN,
        "DEBUG=0 ");
    // objects print as Go structs (Docker formats typed structs), not map[...]
    // Deviation; Go gives: "map[Name:DEBUG Settable:[value] Value:0]"
    check("{{index .Config.Env 0}}", PLUGIN,
        "{DEBUG [value] 0}");
    check("{{if .Enabled}}on{{else}}off{{end}}", PLUGIN,
        "off");
    check("{{len .Settings.Env}}", PLUGIN,
        "1");
    check(r#"{{printf "%.12s" .Id}}"#, PLUGIN,
        "5ae1c0f4b1e2");
    check(r#"{{.Id | printf "%.5s"}}"#, PLUGIN,
        "5ae1c");
    check("  {{- .Name -}}  \n", PLUGIN,
        "vieux/sshfs:latest");
    // json keeps document (struct field) order; Go sorts map keys
    // Deviation; Go gives: r#"{"Args":[],"Devices":[],"Env":["DEBUG=0"],"Mounts":[]}"#
    check("{{json .Settings}}", PLUGIN,
        r#"{"Mounts":[],"Env":["DEBUG=0"],"Args":[],"Devices":[]}"#);
    check("{{.Settings.Env}}", PLUGIN,
        "[DEBUG=0]");
    check(r#"{{join .Settings.Env ","}}"#, PLUGIN,
        "DEBUG=0");
    check("{{range $i, $e := .Settings.Env}}{{$i}}={{$e}}{{end}}", PLUGIN,
        "0=DEBUG=0");
    check("{{.Config.Interface.Socket}}", PLUGIN,
        "sshfs.sock");
    // objects print as Go structs (Docker formats typed structs), not map[...]
    // Deviation; Go gives: "map[Socket:sshfs.sock Types:[docker.volumedriver/1.0]]"
    check("{{.Config.Interface}}", PLUGIN,
        "{[docker.volumedriver/1.0] sshfs.sock}");
    check("{{.Foo}}", PLUGIN,
        r#"ERROR: template: :1:2: executing "" at <.Foo>: map has no entry for key "Foo""#);
    check("{{.Config.Foo}}", PLUGIN,
        r#"ERROR: template: :1:9: executing "" at <.Config.Foo>: map has no entry for key "Foo""#);
    check("{{.Name.Foo}}", PLUGIN,
        r#"ERROR: template: :1:7: executing "" at <.Name.Foo>: can't evaluate field Foo in type interface {}"#);
    check("{{range .Config.Env}}{{.Name}}={{.Value}}{{end}}", PLUGIN,
        "DEBUG=0");
    check("{{with .Config.Interface}}{{.Socket}}{{end}}", PLUGIN,
        "sshfs.sock");
    check("{{with .Settings.Mounts}}yes{{else}}none{{end}}", PLUGIN,
        "none");
    check("{{range .Settings.Mounts}}x{{else}}empty{{end}}", PLUGIN,
        "empty");
    check("{{$n := .Name}}{{$n}}", PLUGIN,
        "vieux/sshfs:latest");
    check("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", "{}",
        "2");
    check("{{range $k, $v := .}}{{$k}}={{$v}};{{end}}", r#"{"b":1,"a":2,"c":3}"#,
        "a=2;b=1;c=3;");
    check("{{range .}}{{.}},{{end}}", r#"{"b":1,"a":2,"c":3}"#,
        "2,1,3,");
    check("{{range $i, $e := .}}{{if eq $i 1}}{{continue}}{{end}}{{if eq $i 3}}{{break}}{{end}}{{$e}}{{end}}", r#"["a","b","c","d","e"]"#,
        "ac");
    check("{{range .}}{{range .}}{{if eq . 2}}{{break}}{{end}}{{.}}{{end}};{{end}}", "[[1,2,3],[4,2],[5]]",
        "1;4;5;");
    check("{{if and .A .B}}y{{else}}n{{end}}", r#"{"A":1,"B":0}"#,
        "n");
    check("{{or .A .B}}|{{or .B .A}}|{{or .B .C}}", r#"{"A":"x","B":"","C":0}"#,
        "x|x|0");
    check("{{and 1 0 2}}|{{and 1 2}}|{{and .A .Missing}}", r#"{"A":0}"#,
        "0|2|0");
    check("{{not .A}} {{not .B}}", r#"{"A":0,"B":"x"}"#,
        "true false");
    check("a{{/* comment */}}b", "{}",
        "ab");
    check("a {{- /* comment */ -}} \n b", "{}",
        "ab");
    check("a  \n\t{{- 1}}|{{2 -}}  \n b", "{}",
        "a1|2b");
    check(r#"{{"a\tb\u00e9\x41\101\""}}"#, "{}",
        "a\tbéAA\"");
    check(r"{{`a\nb`}}", "{}",
        r"a\nb");
    check("{{1}} {{-2}} {{+3}} {{1.5}} {{1e6}} {{0x1F}} {{'a'}} {{1.0}} {{017}} {{0b101}} {{1_000}}", "{}",
        "1 -2 3 1.5 1e+06 31 97 1 15 5 1000");
    check("{{true}} {{false}}", "{}",
        "true false");
    check("{{nil}}", "{}",
        r#"ERROR: template: :1:2: executing "" at <nil>: nil is not a command"#);
    // null prints <nil> (a nil field of a Docker struct), Go's map data gives <no value>
    // Deviation; Go gives: "<no value>"
    check("{{.N}}", r#"{"N":null}"#,
        "<nil>");
    check("{{.A}}", r#"{"A":[1,"a",true,null,[2,3]]}"#,
        "[1 a true <nil> [2 3]]");
    // objects print as Go structs (Docker formats typed structs), not map[...]
    // Deviation; Go gives: "[map[x:1 y:b]]"
    check("{{.A}}", r#"{"A":[{"x":1,"y":"b"}]}"#,
        "[{1 b}]");
    // objects print as Go structs (Docker formats typed structs), not map[...]
    // Deviation; Go gives: "[]|map[]"
    check("{{.E}}|{{.O}}", r#"{"E":[],"O":{}}"#,
        "[]|{}");
    check("{{(index .Config.Env 0).Name}}", PLUGIN,
        "DEBUG");
    check("{{$e := index .Config.Env 0}}{{$e.Name}}", PLUGIN,
        "DEBUG");
    check("{{range .Settings.Env}}{{$.Name}}{{end}}", PLUGIN,
        "vieux/sshfs:latest");
    check(r#"{{if eq .Name "x"}}x{{else if eq .Name "vieux/sshfs:latest"}}match{{else}}no{{end}}"#, PLUGIN,
        "match");
    check("{{if .A}}a{{else if .B}}b{{else if .C}}c{{else}}none{{end}}", r#"{"A":0,"B":0,"C":1}"#,
        "c");
    check(r#"{{(printf "%s-%s" "a" "b") | len}}"#, "{}",
        "3");
    check(r#"{{.Name | printf "%s!" | printf "[%s]"}}"#, PLUGIN,
        "[vieux/sshfs:latest!]");
    check("{{with $x := .Config}}{{$x.Description}}{{end}}", PLUGIN,
        "sshFS plugin for Docker");
    check("{{range .}}{{if .}}t{{else}}f{{end}}{{end}}", r#"[0,1,"","0",[],[0],{},{"a":1},null,0.0,0.5,false,true]"#,
        "ftftftftfftft");
    check("line1\n{{.A}}\nline3", r#"{"A":"x"}"#,
        "line1\nx\nline3");
    check("a\n  b {{.Missing}}", "{}",
        r#"ERROR: template: :2:6: executing "" at <.Missing>: map has no entry for key "Missing""#);
    check("{{.A\n}}", r#"{"A":"nl"}"#,
        "nl");
    check("{{.A.B}}", r#"{"A":5}"#,
        r#"ERROR: template: :1:4: executing "" at <.A.B>: can't evaluate field B in type interface {}"#);
    check("{{.A.B}}", r#"{"A":null}"#,
        r#"ERROR: template: :1:4: executing "" at <.A.B>: nil pointer evaluating interface {}.B"#);
    check("{{.A 1}}", r#"{"A":5}"#,
        r#"ERROR: template: :1:2: executing "" at <.A>: A is not a method but has arguments"#);
    check("{{.A | .B}}", r#"{"A":5,"B":1}"#,
        r#"ERROR: template: :1:7: executing "" at <.B>: B is not a method but has arguments"#);
    check(r#"{{"x" 1}}"#, "{}",
        r#"ERROR: template: :1:2: executing "" at <"x">: can't give argument to non-function "x""#);
    check("{{range 5}}{{end}}", "{}",
        r#"ERROR: template: :1:8: executing "" at <5>: range can't iterate over 5"#);
    check("{{range .Name}}{{end}}", PLUGIN,
        r#"ERROR: template: :1:8: executing "" at <.Name>: range can't iterate over vieux/sshfs:latest"#);
    check("{{$x := 1}}{{$x.Foo}}", "{}",
        r#"ERROR: template: :1:15: executing "" at <$x.Foo>: can't evaluate field Foo in type int"#);
    check("{{$x := 1}}{{$x 2}}", "{}",
        r#"ERROR: template: :1:13: executing "" at <$x>: can't give argument to non-function $x"#);
    check("{{.S}} {{len .S}}", r#"{"S":"héllo 世界"}"#,
        "héllo 世界 13");
    check("{{- range .L}} {{.}} {{- end}}", r#"{"L":["a","b"]}"#,
        " a b");
    check("{{range $i, $e := .L}}{{$i}}{{end}}{{range $e := .L}}{{$e}}{{end}}", r#"{"L":["a","b"]}"#,
        "01ab");
    check("{{with .A}}{{.}}{{else}}none{{end}}|{{with .B}}{{.}}{{else}}none{{end}}", r#"{"A":"x","B":""}"#,
        "x|none");
    check("{{if $x := .A}}{{$x}}{{else}}{{$x}}!{{end}}", r#"{"A":0}"#,
        "0!");
    check("{{(.A).B}}", r#"{"A":{"B":"chain"}}"#,
        "chain");
    check("{{(.A).C}}", r#"{"A":{"B":"chain"}}"#,
        r#"ERROR: template: :1:3: executing "" at <.A>: map has no entry for key "C""#);
    check("{{print .A.B.C}}", r#"{"A":{"B":{"C":7}}}"#,
        "7");
    check("{{.Num}} {{.Neg}} {{.F}} {{.Big}} {{.Small}}", r#"{"Num":42,"Neg":-7,"F":2.5,"Big":1e+21,"Small":1e-05}"#,
        "42 -7 2.5 1e+21 1e-05");
    check("{{range $k, $v := .}}{{$k}}{{end}}", "null",
        "");
    check("{{$.A}}-{{with .B}}{{$.A}}{{.}}{{end}}", r#"{"A":"root","B":"inner"}"#,
        "root-rootinner");
    check("{{range .}}{{.Name}}:{{.Enabled}} {{end}}", r#"[{"Name":"a","Enabled":true},{"Name":"b","Enabled":false}]"#,
        "a:true b:false ");
    check("{{.A}}{{.B}}", r#"{"A":"partial"}"#,
        r#"ERROR: template: :1:8: executing "" at <.B>: map has no entry for key "B""#);
    check("{{range .L}}{{.X}}{{end}}", r#"{"L":[null]}"#,
        r#"ERROR: template: :1:14: executing "" at <.X>: nil pointer evaluating interface {}.X"#);
    // END CORPUS exec
    finish();
}
