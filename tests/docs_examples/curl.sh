curl -X POST https://itsocr.com/api/v1/ocr \
  -H "Authorization: Bearer itsocr_your_token_here" \
  -F "file=@document.jpg"
