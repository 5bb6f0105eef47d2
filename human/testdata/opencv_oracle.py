"""OpenCV oracle of the code-area detection (followup-attention's eye_tracking/utils.py:
get_code_coordinates and get_coordinate_of_array, imutils.resize inlined).

usage: opencv_oracle.py FRAME TOP_LEFT BOTTOM_RIGHT OUT_DIR
Writes OUT_DIR/canny_frame.npy (Canny 50/200 of the frame's gray), canny_tl.npy (of the
colour top-left marker), area_<w>.npy (the gray frame resized with INTER_AREA to some
widths) and prints the located area as JSON.
"""
import json
import sys

import cv2
import numpy as np


def resize(gray, width):
    h, w = gray.shape[:2]
    r = width / float(w)
    return cv2.resize(gray, (width, int(h * r)), interpolation=cv2.INTER_AREA)


def locate(template, image):
    template = cv2.Canny(template, 50, 200)
    (tH, tW) = template.shape[:2]
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    found = None
    for scale in np.linspace(0.2, 1.0, 20)[::-1]:
        resized = resize(gray, int(gray.shape[1] * scale))
        r = gray.shape[1] / float(resized.shape[1])
        if resized.shape[0] < tH or resized.shape[1] < tW:
            break
        edged = cv2.Canny(resized, 50, 200)
        result = cv2.matchTemplate(edged, template, cv2.TM_CCOEFF)
        (_, maxVal, _, maxLoc) = cv2.minMaxLoc(result)
        if found is None or maxVal > found[0]:
            found = (maxVal, maxLoc, r)
    (_, maxLoc, r) = found
    return int(maxLoc[0] * r), int(maxLoc[1] * r)


frame_path, tl_path, br_path, out = sys.argv[1:5]
img = cv2.imread(frame_path)
tl = cv2.imread(tl_path)
br = cv2.imread(br_path)
gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
np.save(f"{out}/gray.npy", gray)
np.save(f"{out}/canny_frame.npy", cv2.Canny(gray, 50, 200))
np.save(f"{out}/canny_tl.npy", cv2.Canny(tl, 50, 200))
for width in (1823, 1162, 384):
    np.save(f"{out}/area_{width}.npy", resize(gray, width))
h, w = img.shape[:2]
cut = img[0:int(h * .2), 0:int(w * .3), :]
x0, y0 = locate(tl, cut)
x1, y1 = locate(br, img)
print(json.dumps({"tl": [x0, y0], "br": [x1, y1]}))
