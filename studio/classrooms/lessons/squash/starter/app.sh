#!/bin/sh
echo "built with $(cat /opt/tools/VERSION)"
