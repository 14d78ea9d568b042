import fs from 'fs';

// Read file and create a Blob
const fileBuffer = fs.readFileSync('document.jpg');
const blob = new Blob([fileBuffer], { type: 'image/jpeg' });

const formData = new FormData();
formData.append('file', blob, 'document.jpg');

const response = await fetch('https://itsocr.com/api/v1/ocr', {
  method: 'POST',
  headers: {
    'Authorization': 'Bearer itsocr_your_token_here'
  },
  body: formData
});

const result = await response.json();
console.log(result.text);
