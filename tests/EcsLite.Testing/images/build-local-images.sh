#!/bin/sh
# Builds the images the tests run, from Debian's busybox-static, since no registry is reachable:
#   ecslite/busybox:latest  busybox with every applet on PATH
#   httpd:2.4               a stand-in for the Apache image the seed's task definition names:
#                           sh, and httpd-foreground serving /usr/local/apache2/htdocs on port 80
set -eu
[ -x /bin/busybox ] || { echo "busybox-static is not installed" >&2; exit 1; }

# Built again only when busybox or this script changed: every test run importing anew left the
# previous images behind, untagged, on the developer's machine.
build=$(cat /bin/busybox "$0" | sha256sum | cut -c1-16)
built() { [ "$(docker image inspect -f '{{index .Config.Labels "ecslite.test-image-build"}}' "$1" 2>/dev/null)" = "$build" ]; }
if built ecslite/busybox:latest && built httpd:2.4; then exit 0; fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/usr/local/bin" "$root/usr/local/apache2/htdocs" "$root/tmp" "$root/etc" "$root/www"
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\nworker:x:1000:1000:worker:/tmp:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\nworker:x:1000:\n' > "$root/etc/group"
printf '#!/bin/sh\nexec httpd -f -v -p 80 -h /usr/local/apache2/htdocs\n' > "$root/usr/local/bin/httpd-foreground"
chmod 755 "$root/usr/local/bin/httpd-foreground"
echo '<html><body><h1>It works!</h1></body></html>' > "$root/usr/local/apache2/htdocs/index.html"
tar -C "$root" -c . | docker import --change "LABEL ecslite.test-image-build=$build" --change 'ENV PATH=/usr/local/bin:/bin' --change 'CMD ["sh"]' - ecslite/busybox:latest >/dev/null
tar -C "$root" -c . | docker import --change "LABEL ecslite.test-image-build=$build" --change 'ENV PATH=/usr/local/bin:/bin' --change 'CMD ["httpd-foreground"]' --change 'EXPOSE 80' - httpd:2.4 >/dev/null
