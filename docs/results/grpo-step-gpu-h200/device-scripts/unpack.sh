#!/usr/bin/env bash
# Unpack the staged packages (Python 3.12 wheels installed with --target), data, tokenizer and node.
mkdir -p /tmp/site /tmp/pk /tmp/node
python3 -c "
import lzma, shutil, tarfile
tarfile.open('.whl/g/site.tar.xz', 'r:xz').extractall('/tmp/site', filter='tar')
tarfile.open('.whl/g/pack.tar.xz', 'r:xz').extractall('/tmp/pk', filter='tar')
with lzma.open('.whl/g/node.xz') as src, open('/tmp/node/node', 'wb') as dst:
    shutil.copyfileobj(src, dst, 1 << 22)
"
chmod +x /tmp/node/node
/tmp/node/node --version || echo "carried node does not run here"
