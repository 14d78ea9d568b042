import requests

with open('document.jpg', 'rb') as f:
    response = requests.post(
        'https://itsocr.com/api/v1/ocr',
        headers={'Authorization': 'Bearer itsocr_your_token_here'},
        files={'file': f}
    )

result = response.json()
print(result['text'])
