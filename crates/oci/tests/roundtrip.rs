//! Property tests: for every wire type, serialise then parse is the identity.

use std::collections::BTreeMap;

use pluginctl_oci::plugin::{
    PluginArgs, PluginDevice, PluginEnv, PluginInterface, PluginLinux, PluginMount, PluginNetwork,
    PluginRootfs, PluginUser,
};
use pluginctl_oci::{
    Algorithm, Descriptor, Digest, Document, Index, InterfaceType, Manifest, MediaType, Platform,
    PluginConfig, Reference,
};
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;

fn digest() -> impl Strategy<Value = Digest> {
    (any::<bool>(), vec(any::<u8>(), 0..64)).prop_map(|(long, bytes)| {
        let alg = if long {
            Algorithm::Sha512
        } else {
            Algorithm::Sha256
        };
        Digest::of_bytes_with(alg, &bytes)
    })
}

fn text() -> impl Strategy<Value = String> {
    // Includes the characters Go escapes and some non-ASCII.
    "[a-zA-Z0-9 <>&/._:\u{e9}\u{2028}-]{0,12}"
}

fn media_type() -> impl Strategy<Value = MediaType> {
    prop_oneof![
        proptest::sample::select(MediaType::KNOWN.to_vec()),
        "application/x-[a-z]{1,8}".prop_map(|s| MediaType::parse(&s)),
    ]
}

fn platform() -> impl Strategy<Value = Platform> {
    (
        "[a-z0-9]{1,8}",
        "[a-z]{1,8}",
        of("v[0-9]"),
        of("[0-9.]{1,6}"),
        of(vec("[a-z]{1,5}", 0..3)),
        of(vec("[a-z]{1,5}", 0..3)),
    )
        .prop_map(
            |(architecture, os, variant, os_version, os_features, features)| Platform {
                architecture,
                os,
                os_version,
                os_features,
                variant,
                features,
            },
        )
}

fn annotations() -> impl Strategy<Value = Option<BTreeMap<String, String>>> {
    of(proptest::collection::btree_map(
        "[a-z.]{1,10}",
        text(),
        0..3,
    ))
}

fn descriptor() -> impl Strategy<Value = Descriptor> {
    (
        media_type(),
        digest(),
        0..=Descriptor::MAX_SIZE,
        of(vec("https://[a-z]{1,8}", 0..2)),
        annotations(),
        of(platform()),
        of("[a-z/.+]{1,12}"),
    )
        .prop_map(
            |(media_type, digest, size, urls, annotations, platform, artifact_type)| Descriptor {
                media_type,
                digest,
                size,
                urls,
                annotations,
                platform,
                artifact_type,
            },
        )
}

fn manifest() -> impl Strategy<Value = Manifest> {
    (
        prop_oneof![
            Just(None),
            Just(Some(MediaType::OciManifest)),
            Just(Some(MediaType::DockerManifest))
        ],
        of("[a-z/.+]{1,12}"),
        descriptor(),
        vec(descriptor(), 0..4),
        of(descriptor()),
        annotations(),
    )
        .prop_map(
            |(media_type, artifact_type, config, layers, subject, annotations)| Manifest {
                schema_version: 2,
                media_type,
                artifact_type,
                config,
                layers,
                subject,
                annotations,
            },
        )
}

fn index() -> impl Strategy<Value = Index> {
    (
        prop_oneof![
            Just(None),
            Just(Some(MediaType::OciIndex)),
            Just(Some(MediaType::DockerManifestList))
        ],
        of("[a-z/.+]{1,12}"),
        vec(descriptor(), 0..4),
        of(descriptor()),
        annotations(),
    )
        .prop_map(
            |(media_type, artifact_type, manifests, subject, annotations)| Index {
                schema_version: 2,
                media_type,
                artifact_type,
                manifests,
                subject,
                annotations,
            },
        )
}

fn reference() -> impl Strategy<Value = Reference> {
    let component = "[a-z0-9]{1,6}([._-][a-z0-9]{1,6})?";
    (
        prop_oneof![
            Just(String::new()),
            Just("docker.io/".to_owned()),
            Just("localhost:5000/".to_owned()),
            Just("[::1]:5000/".to_owned()),
            "[a-z]{1,8}\\.[a-z]{2,3}(:[0-9]{1,5})?/",
        ],
        vec(component, 1..4),
        of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
        of(digest()),
    )
        .prop_map(|(domain, path, tag, digest)| {
            let mut s = format!("{domain}{}", path.join("/"));
            if let Some(t) = tag {
                s = format!("{s}:{t}");
            }
            if let Some(d) = digest {
                s = format!("{s}@{d}");
            }
            Reference::parse(&s).unwrap()
        })
}

fn strings() -> impl Strategy<Value = Option<Vec<String>>> {
    of(vec(text(), 0..3))
}

fn plugin_config() -> impl Strategy<Value = PluginConfig> {
    let args =
        (text(), text(), strings(), strings()).prop_map(|(description, name, settable, value)| {
            PluginArgs {
                description,
                name,
                settable,
                value,
            }
        });
    let env =
        (text(), text(), strings(), of(text())).prop_map(|(description, name, settable, value)| {
            PluginEnv {
                description,
                name,
                settable,
                value,
            }
        });
    let itype = ("[a-z]{1,6}(\\.[a-z]{1,4})?", "[a-z]{1,10}", "[0-9v.]{0,4}").prop_map(
        |(prefix, capability, version)| InterfaceType {
            prefix,
            capability,
            version,
        },
    );
    let interface = (
        prop_oneof![Just(String::new()), Just("moby.plugins.http/v1".to_owned())],
        text(),
        of(vec(itype, 0..3)),
    )
        .prop_map(|(protocol_scheme, socket, types)| PluginInterface {
            protocol_scheme,
            socket,
            types,
        });
    let device =
        (text(), text(), of(text()), strings()).prop_map(|(description, name, path, settable)| {
            PluginDevice {
                description,
                name,
                path,
                settable,
            }
        });
    let linux = (any::<bool>(), strings(), of(vec(device, 0..2))).prop_map(
        |(allow_all_devices, capabilities, devices)| PluginLinux {
            allow_all_devices,
            capabilities,
            devices,
        },
    );
    let mount = (
        text(),
        text(),
        text(),
        strings(),
        strings(),
        of(text()),
        text(),
    )
        .prop_map(
            |(description, destination, name, options, settable, source, kind)| PluginMount {
                description,
                destination,
                name,
                options,
                settable,
                source,
                kind,
            },
        );
    let rootfs = of((
        of(vec(digest(), 0..3)),
        prop_oneof![Just(String::new()), Just("layers".to_owned())],
    ))
    .prop_map(|r| r.map(|(diff_ids, kind)| PluginRootfs { diff_ids, kind }));
    let head = (
        args,
        text(),
        text(),
        text(),
        strings(),
        of(vec(env, 0..3)),
        interface,
        any::<bool>(),
    );
    let tail = (
        linux,
        of(vec(mount, 0..2)),
        text(),
        any::<bool>(),
        text(),
        (any::<u32>(), any::<u32>()),
        text(),
        rootfs,
    );
    (head, tail).prop_map(
        |(
            (
                args,
                description,
                docker_version,
                documentation,
                entrypoint,
                env,
                interface,
                ipc_host,
            ),
            (linux, mounts, network, pid_host, propagated_mount, (gid, uid), work_dir, rootfs),
        )| PluginConfig {
            args,
            description,
            docker_version,
            documentation,
            entrypoint,
            env,
            interface,
            ipc_host,
            linux,
            mounts,
            network: PluginNetwork { kind: network },
            pid_host,
            propagated_mount,
            user: PluginUser { gid, uid },
            work_dir,
            rootfs,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn digest_round_trips(d in digest()) {
        prop_assert_eq!(Digest::parse(d.as_str()).unwrap(), d.clone());
        let json = serde_json::to_string(&d).unwrap();
        prop_assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
    }

    #[test]
    fn media_type_round_trips(m in media_type()) {
        prop_assert_eq!(MediaType::parse(m.as_str()), m.clone());
        prop_assert_eq!(serde_json::from_str::<MediaType>(&serde_json::to_string(&m).unwrap()).unwrap(), m);
    }

    #[test]
    fn platform_round_trips(p in platform()) {
        prop_assert_eq!(serde_json::from_slice::<Platform>(&pluginctl_oci::json::to_vec(&p)).unwrap(), p.clone());
        let short = Platform { os_version: None, os_features: None, features: None, ..p };
        prop_assert_eq!(short.to_string().parse::<Platform>().unwrap(), short);
    }

    #[test]
    fn descriptor_round_trips(d in descriptor()) {
        prop_assert_eq!(serde_json::from_slice::<Descriptor>(&pluginctl_oci::json::to_vec(&d)).unwrap(), d);
    }

    #[test]
    fn manifest_round_trips(m in manifest()) {
        let bytes = m.to_vec();
        prop_assert_eq!(Manifest::parse(m.media_type.as_ref(), &bytes).unwrap(), m.clone());
        prop_assert_eq!(Document::parse(None, &bytes).unwrap(), Document::Manifest(m));
    }

    #[test]
    fn index_round_trips(i in index()) {
        let bytes = i.to_vec();
        prop_assert_eq!(Index::parse(None, &bytes).unwrap(), i);
    }

    #[test]
    fn reference_round_trips(r in reference()) {
        prop_assert_eq!(Reference::parse_normalized(&r.to_string()).unwrap(), r.clone());
        // The familiar form normalises back to the same reference.
        prop_assert_eq!(Reference::parse_normalized(&r.familiar()).unwrap(), r.clone());
        prop_assert_eq!(serde_json::from_str::<Reference>(&serde_json::to_string(&r).unwrap()).unwrap(), r);
    }

    #[test]
    fn plugin_config_round_trips(c in plugin_config()) {
        let bytes = c.to_vec();
        prop_assert_eq!(PluginConfig::from_slice(&bytes).unwrap(), c.clone());
        // Lowercasing every key changes nothing: keys are case-insensitive.
        let mut value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        lowercase_keys(&mut value);
        prop_assert_eq!(PluginConfig::from_slice(value.to_string().as_bytes()).unwrap(), c);
    }
}

fn lowercase_keys(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            let old = std::mem::take(map);
            for (k, mut val) in old {
                lowercase_keys(&mut val);
                map.insert(k.to_lowercase(), val);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(lowercase_keys),
        _ => {}
    }
}
