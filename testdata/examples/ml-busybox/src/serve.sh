#!/bin/sh
echo "serving $(ls /app/site-packages | wc -l) packages with $(cat /app/model/weights.bin) as $(id -un)"
